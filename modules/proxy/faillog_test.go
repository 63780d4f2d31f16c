package proxy_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// logBuffer collects a server's JSON log lines.
type logBuffer struct{ testtool.LogBuffer }

// records returns the logged records whose msg is msg.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// startLogged starts src with a JSON logger at level writing into the returned buffer.
func startLogged(t *testing.T, src string, level slog.Level) (*servertest.Server, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
	return servertest.StartLogged(t, src, log), buf
}

// TestUpstreamFailureLoggedOnce: several requests to a refused upstream within the rate
// limit's window give 502 each and exactly one warning naming the route, the upstream, the
// cause and the first request's id.
func TestUpstreamFailureLoggedOnce(t *testing.T) {
	target := fmt.Sprintf("http://127.0.0.1:%d", testtool.FreePort(t)) // nothing listens
	srv, buf := startLogged(t, fmt.Sprintf("port: 8080\nproxy:\n  /api: { targets: [%q] }\n", target), slog.LevelInfo)
	url := srv.URL(8080) + "/api/x"
	for i := range 5 {
		r := servertest.Do(t, http.MethodGet, url, "X-Request-ID", fmt.Sprintf("req-%d", i))
		if r.Status != http.StatusBadGateway {
			t.Fatalf("request %d: status %d, want 502", i, r.Status)
		}
	}
	recs := buf.records(t, "proxy: upstream failed")
	if len(recs) != 1 {
		t.Fatalf("got %d failure lines, want 1: %v", len(recs), recs)
	}
	rec := recs[0]
	want := map[string]any{"level": "WARN", "route": "/api", "upstream": target, "status": float64(502), "request_id": "req-0"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
	if e, _ := rec["error"].(string); !strings.Contains(e, "connection refused") {
		t.Errorf("error = %q, want the cause (connection refused)", e)
	}
}

// TestRoutingLoggedAtDebug: at debug level each request logs the site, route and upstream
// picked; at info level it logs no routing line.
func TestRoutingLoggedAtDebug(t *testing.T) {
	up := newNamed(t, "a", nil)
	src := fmt.Sprintf("port: 8080\nproxy:\n  /api: { targets: [%q] }\n", up.URL)
	for _, tc := range []struct {
		level slog.Level
		lines int
	}{{slog.LevelDebug, 1}, {slog.LevelInfo, 0}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			srv, buf := startLogged(t, src, tc.level)
			if r := servertest.Do(t, http.MethodGet, srv.URL(8080)+"/api/x", "X-Request-ID", "rid-1"); r.Status != http.StatusOK {
				t.Fatalf("status %d", r.Status)
			}
			recs := buf.records(t, "proxy: routing")
			if len(recs) != tc.lines {
				t.Fatalf("got %d routing lines, want %d: %v", len(recs), tc.lines, recs)
			}
			if tc.lines == 0 {
				return
			}
			want := map[string]any{"route": "/api", "upstream": up.URL, "request_id": "rid-1", "path": "/api/x"}
			for k, v := range want {
				if recs[0][k] != v {
					t.Errorf("%s = %v, want %v (record %v)", k, recs[0][k], v, recs[0])
				}
			}
			if recs[0]["site"] == "" || recs[0]["site"] == nil {
				t.Errorf("no site in %v", recs[0])
			}
		})
	}
}
