package timing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func TestResponseTimeConfig(t *testing.T) {
	tests := []struct {
		name    string
		node    config.Node
		enabled bool
		digits  int
		errPath string
	}{
		{"true", true, true, 3, ""},
		{"false", false, false, 3, ""},
		{"digits", map[string]config.Node{"digits": 1.0}, true, 1, ""},
		{"zero digits", map[string]config.Node{"digits": 0.0}, true, 0, ""},
		{"empty object", map[string]config.Node{}, true, 3, ""},
		{"too many digits", map[string]config.Node{"digits": 7.0}, true, 0, "s.responseTime.digits"},
		{"negative digits", map[string]config.Node{"digits": -1.0}, true, 0, "s.responseTime.digits"},
		{"fractional digits", map[string]config.Node{"digits": 1.5}, true, 0, "s.responseTime.digits"},
		{"string", "yes", false, 0, "s.responseTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ResponseTime
			d := &config.Diagnostics{}
			config.Decode(tt.node, "s.responseTime", &c, d)
			if tt.errPath != "" {
				if e := d.Errors(); len(e) != 1 || e[0].Path != tt.errPath {
					t.Fatalf("errors %v; want one at %s", e, tt.errPath)
				}
				return
			}
			if d.HasErrors() || c.Enabled != tt.enabled || (tt.enabled && c.Digits != tt.digits) {
				t.Fatalf("got %+v, %v", c, d.Errors())
			}
		})
	}
}

func FuzzResponseTimeConfig(f *testing.F) {
	f.Add(3.0)
	f.Add(-1.0)
	f.Add(1e300)
	f.Fuzz(func(t *testing.T, digits float64) {
		var c ResponseTime
		d := &config.Diagnostics{}
		config.Decode(map[string]config.Node{"digits": digits}, "r", &c, d)
		if c.Digits < 0 || c.Digits > maxDigits {
			t.Fatalf("digits %d out of range", c.Digits)
		}
	})
}

func provisionFor(t *testing.T, raw map[string]config.Node) *timing {
	t.Helper()
	d := &config.Diagnostics{}
	ctx := core.NewSiteContext(context.Background(), &core.Site{Label: "*", Path: "sites[0]"}, raw, nil, nil)
	ctx.Diag = d
	inst := provision(ctx)
	if d.HasErrors() {
		t.Fatalf("provision: %v", d.Errors())
	}
	if inst == nil {
		return nil
	}
	return inst.(*timing)
}

func TestHeaders(t *testing.T) {
	respRe := regexp.MustCompile(`^\d+\.\d{2}ms$`)
	st := provisionFor(t, map[string]config.Node{"responseTime": map[string]config.Node{"digits": 2.0}, "serverTiming": true})
	tests := []struct {
		name     string
		upstream string
		updur    time.Duration
		write    func(w http.ResponseWriter)
		stamped  bool // the header was sent through the wrapper, so the hook ran
		wantUp   bool
	}{
		{"local write", "", 0, func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }, true, false},
		{"WriteHeader", "", 0, func(w http.ResponseWriter) { w.WriteHeader(204) }, true, false},
		{"flush", "", 0, func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, true, false},
		// Nothing sent through the wrapper: the hook never runs, and net/http's implicit 200
		// after the handler returns adds nothing either.
		{"nothing written", "", 0, func(w http.ResponseWriter) {}, false, false},
		{"proxied", "http://u", 12500 * time.Microsecond, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusContinue)
			w.WriteHeader(200)
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := st.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if s := core.State(r); s != nil {
					s.Upstream, s.UpstreamDuration = tt.upstream, tt.updur
				}
				tt.write(w)
			}))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			s, req := core.AcquireState(rec, req, &core.Site{}, time.Now().Add(-5*time.Millisecond))
			h.ServeHTTP(&s.Writer, req)
			core.ReleaseState(s)
			if !tt.stamped {
				if got := rec.Header(); got.Get("X-Response-Time") != "" || got.Get("Server-Timing") != "" || rec.Flushed {
					t.Errorf("nothing was sent, yet headers %v (flushed %v)", got, rec.Flushed)
				}
				return
			}
			if v := rec.Header().Get("X-Response-Time"); !respRe.MatchString(v) {
				t.Errorf("X-Response-Time = %q", v)
			} else if f, _ := strconv.ParseFloat(strings.TrimSuffix(v, "ms"), 64); f < 5 {
				t.Errorf("X-Response-Time %v below the 5 ms the request is old", f)
			}
			stv := rec.Header().Values("Server-Timing")
			if len(stv) != 1 || !strings.HasPrefix(stv[0], "total;dur=") {
				t.Fatalf("Server-Timing = %q", stv)
			}
			if got := strings.Contains(stv[0], ", upstream;dur=12.5"); got != tt.wantUp {
				t.Errorf("Server-Timing = %q; upstream part wanted: %v", stv[0], tt.wantUp)
			}
		})
	}
}

func TestOffWhenNotConfigured(t *testing.T) {
	if provisionFor(t, map[string]config.Node{"responseTime": false, "serverTiming": false}) != nil {
		t.Fatal("instance for disabled timing")
	}
	only := provisionFor(t, map[string]config.Node{"serverTiming": true})
	rec := httptest.NewRecorder()
	core.WithState(only.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Header().Get("X-Response-Time") != "" || rec.Header().Get("Server-Timing") == "" {
		t.Fatalf("headers %v", rec.Header())
	}
}

// TestThroughProxy runs a real server in front of an upstream that waits before answering:
// upstream;dur is at least that wait and total is at least upstream.
func TestThroughProxy(t *testing.T) {
	const wait = 30 * time.Millisecond
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(wait)
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nresponseTime: true\nserverTiming: true\nproxy: %q\n", up.URL))
	resp, err := http.Get(srv.URL(8080) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := regexp.MustCompile(`^total;dur=([\d.]+), upstream;dur=([\d.]+)$`).FindStringSubmatch(resp.Header.Get("Server-Timing"))
	if m == nil {
		t.Fatalf("Server-Timing = %q", resp.Header.Get("Server-Timing"))
	}
	total, _ := strconv.ParseFloat(m[1], 64)
	upd, _ := strconv.ParseFloat(m[2], 64)
	if upd < float64(wait.Milliseconds()) || total < upd {
		t.Fatalf("total %v upstream %v (upstream waited %v)", total, upd, wait)
	}
	if v := resp.Header.Get("X-Response-Time"); !regexp.MustCompile(`^\d+\.\d{3}ms$`).MatchString(v) {
		t.Fatalf("X-Response-Time = %q", v)
	}
}

func BenchmarkTiming(b *testing.B) {
	d := &config.Diagnostics{}
	ctx := core.NewSiteContext(context.Background(), &core.Site{}, map[string]config.Node{"responseTime": true, "serverTiming": true}, nil, nil)
	ctx.Diag = d
	inst := provision(ctx)
	h := core.WithState(inst.(*timing).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		clear(w.Header())
		h.ServeHTTP(w, r)
	}
}
