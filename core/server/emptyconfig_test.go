package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/health"
)

// TestNoSitesListensOn8080: a configuration without sites serves an empty catch-all site on
// port 8080 (the health endpoint, 404 for the rest) with a warning, instead of listening on
// nothing.
func TestNoSitesListensOn8080(t *testing.T) {
	for _, src := range []string{"global: {}\nsites: []\n", "[]\n"} {
		t.Run(strings.TrimSpace(src), func(t *testing.T) {
			srv := servertest.Start(t, src)
			if ports := srv.Generation.Ports(); len(ports) != 1 || ports[0] != server.EmptyConfigPort {
				t.Fatalf("ports %v, want [%d]", ports, server.EmptyConfigPort)
			}
			for path, want := range map[string]int{"/__health__": http.StatusOK, "/anything": http.StatusNotFound} {
				resp, err := http.Get(srv.URL(server.EmptyConfigPort) + path)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
				}
			}
			warned := false
			for _, w := range srv.Diagnostics.Warnings() {
				warned = warned || (w.Path == "sites" && strings.Contains(w.Message, "no sites configured: listening on port 8080"))
			}
			if !warned {
				t.Errorf("warnings %v, want one at sites about port 8080", srv.Diagnostics.Warnings())
			}
		})
	}
}
