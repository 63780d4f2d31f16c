package proxy_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// healthBody is the health endpoint's answer with includeUpstreams.
type healthBody struct {
	Status    string `json:"status"`
	Upstreams []struct {
		URL            string  `json:"url"`
		Healthy        bool    `json:"healthy"`
		LatencyMs      float64 `json:"latency_ms"`
		Ejected        bool    `json:"ejected"`
		Consecutive5xx int64   `json:"consecutive_5xx"`
	} `json:"upstreams"`
	Routes []struct {
		Route     string `json:"route"`
		Healthy   bool   `json:"healthy"`
		Upstreams []struct {
			URL     string `json:"url"`
			Ejected bool   `json:"ejected"`
		} `json:"upstreams"`
	} `json:"routes"`
}

func getHealth(t *testing.T, url string) (int, healthBody) {
	t.Helper()
	resp, body := get(t, url, nil)
	var hb healthBody
	if err := json.Unmarshal([]byte(body), &hb); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	return resp.StatusCode, hb
}

// TestHealthEndpointIncludesUpstreams: with healthCheck.includeUpstreams the site health
// endpoint lists every upstream (url, healthy, latency_ms, ejected, consecutive_5xx) and
// each route with its verdict, and answers 503 once a route has no upstream that can take
// traffic (here: its only upstream refuses connections and is ejected).
func TestHealthEndpointIncludesUpstreams(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	dead := closedPort(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
healthCheck: { includeUpstreams: true }
outlierDetection: { consecutive5xx: 1, baseEjectionTimeSecs: 60 }
proxy:
  /a: %q
  /b: %q
`, up.URL, dead))
	base := srv.URL(8080)

	if resp, _ := get(t, base+"/a/x", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/a: %d", resp.StatusCode)
	}
	status, hb := getHealth(t, base+"/__health__")
	if status != http.StatusOK || hb.Status != "ok" || len(hb.Upstreams) != 2 || len(hb.Routes) != 2 {
		t.Fatalf("before any failure: %d %+v", status, hb)
	}
	if hb.Upstreams[0].URL != up.URL || !hb.Upstreams[0].Healthy || hb.Upstreams[0].LatencyMs <= 0 {
		t.Fatalf("upstream a: %+v, want healthy with the latency of the request just made", hb.Upstreams[0])
	}

	if resp, _ := get(t, base+"/b/x", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("/b to a closed port: %d", resp.StatusCode)
	}
	status, hb = getHealth(t, base+"/__health__")
	if status != http.StatusServiceUnavailable || hb.Status != "unhealthy" {
		t.Fatalf("a route without an available upstream: %d %q, want 503 unhealthy", status, hb.Status)
	}
	verdict := map[string]bool{}
	for _, r := range hb.Routes {
		verdict[r.Route] = r.Healthy
	}
	if !verdict["/a"] || verdict["/b"] {
		t.Fatalf("route verdicts %v, want /a healthy and /b not", verdict)
	}
	if hb.Upstreams[1].URL != dead || !hb.Upstreams[1].Ejected {
		t.Fatalf("upstream b: %+v, want ejected", hb.Upstreams[1])
	}
}

// closedPort returns an http:// URL on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// connLedger is an upstream that tells apart the connections its health probes used from
// the others.
type connLedger struct {
	*httptest.Server
	mu     sync.Mutex
	opened []string        // remote addresses, in order
	probes map[string]bool // remote addresses that carried a probe
	used   map[string]bool // remote addresses that carried a proxied request
}

func newConnLedger(t *testing.T) *connLedger {
	l := &connLedger{probes: map[string]bool{}, used: map[string]bool{}}
	l.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		if r.Method == http.MethodHead && r.URL.Path == "/__health__" {
			l.probes[r.RemoteAddr] = true
		} else {
			l.used[r.RemoteAddr] = true
		}
		l.mu.Unlock()
	}))
	l.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			l.mu.Lock()
			l.opened = append(l.opened, c.RemoteAddr().String())
			l.mu.Unlock()
		}
	}
	l.Start()
	t.Cleanup(l.Close)
	return l
}

// proxyConns counts the connections opened that no health probe used.
func (l *connLedger) proxyConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.opened {
		if !l.probes[a] {
			n++
		}
	}
	return n
}

// settlesAt waits until proxyConns is want and stays there for a while.
func (l *connLedger) settlesAt(t *testing.T, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.proxyConns() != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if got := l.proxyConns(); got != want {
		t.Fatalf("%s: %d connections opened besides probes, want %d", what, got, want)
	}
}

// TestPrewarmConnections: healthCheck.prewarmConnections opens that many idle connections
// to each upstream when the generation starts, requests use them, and a reload tops the
// pool up to the new number (pools outlive generations) instead of opening a new set.
func TestPrewarmConnections(t *testing.T) {
	up := newConnLedger(t)
	cfg := func(n int) string {
		return fmt.Sprintf(`
port: 8080
proxy:
  /: { targets: [%q], healthCheck: { intervalSecs: 3600, prewarmConnections: %d } }
`, up.URL, n)
	}
	srv := servertest.Start(t, cfg(3))
	up.settlesAt(t, 3, "after start with prewarmConnections: 3")

	for i := 0; i < 3; i++ {
		if resp, _ := get(t, srv.URL(8080)+"/x", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	up.settlesAt(t, 3, "after 3 requests")

	srv.Reload(t, cfg(5))
	up.settlesAt(t, 5, "after a reload to prewarmConnections: 5")
	srv.Reload(t, cfg(5))
	up.settlesAt(t, 5, "after a reload that keeps 5")
}

// TestPrewarmValidation: at most 8 connections (docs/configuration.md, "prewarmConnections").
func TestPrewarmValidation(t *testing.T) {
	_, d, err := servertest.Build(`{"proxy":{"/api":{"targets":["http://a:1"],"healthCheck":{"prewarmConnections":9}}}}`, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Err(); e == nil || !strings.Contains(e.Error(), "error at proxy./api.healthCheck.prewarmConnections: must be at most 8") {
		t.Fatalf("got %v", e)
	}
}
