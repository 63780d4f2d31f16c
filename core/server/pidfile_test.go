package server_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestPIDFileKey: global.pidFile must be an absolute path (an error at global.pidFile
// otherwise), and a reload that changes it is refused as a cold field.
func TestPIDFileKey(t *testing.T) {
	for _, tc := range []struct {
		name, value, err string
	}{
		{"absolute", "/run/conduit/conduit.pid", ""},
		{"relative", "conduit.pid", `error at global.pidFile: must be an absolute file path, got "conduit.pid"`},
		{"empty", `""`, `error at global.pidFile: must be an absolute file path, got ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("global:\n  pidFile: "+tc.value+"\nsites:\n  - port: 8080\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if tc.err == "" {
				if d.HasErrors() {
					t.Fatalf("unexpected errors: %v", d.Err())
				}
				return
			}
			if !d.HasErrors() || !strings.Contains(d.Err().Error(), tc.err) {
				t.Fatalf("got %v, want %q", d.Err(), tc.err)
			}
		})
	}
	srv := servertest.Start(t, "global:\n  pidFile: /run/a.pid\nsites:\n  - port: 8080\n")
	g, d, err := servertest.Build("global:\n  pidFile: /run/b.pid\nsites:\n  - port: 8080\n", config.FormatYAML)
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	err = srv.Swap(g)
	var cold *server.ColdFieldsError
	if !errors.As(err, &cold) || !strings.Contains(err.Error(), "global.pidFile") {
		t.Fatalf("changed pidFile: %v, want a cold-field error naming global.pidFile", err)
	}
}
