package server_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
)

// TestHTTP1EngineSetting: global.http1Engine takes conduit or std, its absence means the
// default (or the environment's), and any other value is an error at its exact path.
func TestHTTP1EngineSetting(t *testing.T) {
	def := os.Getenv(server.HTTP1EngineEnv)
	if def == "" {
		def = server.DefaultHTTP1Engine
	}
	cases := []struct{ global, want, err string }{
		{"{}", def, ""},
		{"{ http1Engine: conduit }", server.EngineConduit, ""},
		{"{ http1Engine: std }", server.EngineStd, ""},
		{"{ http1Engine: fast }", "", `global.http1Engine: must be conduit or std, got "fast"`},
		{"{ http1Engine: 1 }", "", "global.http1Engine"},
	}
	for _, tc := range cases {
		g, d, err := servertest.Build("global: "+tc.global+"\nsites:\n  - port: 8080\n", config.FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		if tc.err != "" {
			if !d.HasErrors() || !strings.Contains(d.Err().Error(), "error at "+tc.err) {
				t.Errorf("%s: want an error at %s, got %v", tc.global, tc.err, d.Err())
			}
			continue
		}
		if d.HasErrors() {
			t.Fatalf("%s: %v", tc.global, d.Err())
		}
		if got := g.HTTP1Engine(); got != tc.want {
			t.Errorf("%s: engine %q, want %q", tc.global, got, tc.want)
		}
	}
}

// TestHTTP1EngineServes: with either engine a plain port and a TLS port answer HTTP/1.1, the
// TLS port still answers HTTP/2 (net/http), and an h2c port stays on net/http.
func TestHTTP1EngineServes(t *testing.T) {
	ca := tlstest.NewCA(t, "engine CA")
	cert, key := ca.Server(t, "a.test").Write(t, t.TempDir(), "a")
	for _, engine := range []string{server.EngineConduit, server.EngineStd} {
		t.Run(engine, func(t *testing.T) {
			srv := servertest.Start(t, fmt.Sprintf(`
global: { http1Engine: %s }
sites:
  - port: 8080
    health: true
  - port: 8443
    host: a.test
    tls: {cert: %q, key: %q}
    health: true
  - port: 8081
    http2: { h2c: true }
    health: true
`, engine, cert, key))
			want := map[int]string{8080: engine, 8443: engine, 8081: server.EngineStd}
			for port, w := range want {
				if got := srv.ListenerEngine(port); got != w {
					t.Errorf("port %d: engine %q, want %q", port, got, w)
				}
			}
			if r := servertest.Get(t, srv.URL(8080)+"/__health__"); r.Status != 200 {
				t.Errorf("plain: %d", r.Status)
			}
			for _, h2 := range []bool{false, true} {
				p := new(http.Protocols)
				if h2 {
					p.SetHTTP2(true)
				} else {
					p.SetHTTP1(true)
				}
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
					Protocols:       p,
					TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "a.test"},
				}}
				resp, err := client.Get("https://" + srv.HostPort(8443) + "/__health__")
				if err != nil {
					t.Fatalf("h2=%v: %v", h2, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				client.CloseIdleConnections()
				if resp.StatusCode != 200 || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
					t.Errorf("h2=%v: %d %s", h2, resp.StatusCode, resp.Proto)
				}
			}
		})
	}
}

// TestHTTP1EngineIsCold: the engine belongs to the listeners, so a reload that changes it
// is refused.
func TestHTTP1EngineIsCold(t *testing.T) {
	srv := servertest.Start(t, "global: { http1Engine: conduit }\nsites:\n  - port: 8080\n")
	g, d, err := servertest.Build("global: { http1Engine: std }\nsites:\n  - port: 8080\n", config.FormatYAML)
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	var cold *server.ColdFieldsError
	if err := srv.Swap(g); !errors.As(err, &cold) || !strings.Contains(err.Error(), "global.http1Engine") {
		t.Fatalf("swap: %v", err)
	}
}
