package tap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

const adminToken = "tap-test-admin-token-0123456789"

// env is a running server with an Admin API and a real upstream.
type env struct {
	srv  *server.Server
	api  *admin.API
	up   *httptest.Server
	dir  string
	path string
	b    *broker
}

func upstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Up", "yes")
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
}

func testConfig(upURL, extra string) string {
	return fmt.Sprintf(`global:
  admin: { bind: "127.0.0.1:2019", token: %q }
sites:
  - port: 8080
    proxy:
      /api: { targets: [%q] }
%s`, adminToken, upURL, extra)
}

// start serves a config file (so that POST /reload works) and the Admin API.
func start(t *testing.T, extra string) *env {
	t.Helper()
	e := &env{up: upstream(), dir: t.TempDir()}
	t.Cleanup(e.up.Close)
	e.path = filepath.Join(e.dir, "conduit.yaml")
	e.write(t, extra)
	e.srv = server.New(server.Options{Listen: servertest.Ephemeral})
	g, d, err := server.LoadAndBuild(context.Background(), e.path, e.srv.BuildOptions())
	if err != nil || d.HasErrors() {
		t.Fatalf("build: %v %v", err, d.Err())
	}
	if err := e.srv.Start(g); err != nil {
		t.Fatal(err)
	}
	e.api, err = admin.Start("127.0.0.1:0", admin.Options{Server: e.srv, Shutdown: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.srv.Shutdown(ctx)
		_ = e.api.Close(ctx)
	})
	e.b = brokerOf(e.srv.Shared())
	return e
}

func (e *env) write(t *testing.T, extra string) {
	t.Helper()
	if err := os.WriteFile(e.path, []byte(testConfig(e.up.URL, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *env) url(p string) string      { return "http://" + e.srv.Addr(8080).String() + p }
func (e *env) adminAddr() string        { return e.api.Addr().String() }
func (e *env) adminURL(p string) string { return "http://" + e.adminAddr() + p }

// send makes one request through Conduit and returns the status.
func (e *env) send(t testing.TB, method, p string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest(method, e.url(p), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// tapConn is an open GET /tap read line by line.
type tapConn struct {
	resp  *http.Response
	lines chan []byte
}

// subscribe opens GET /tap?query; when it returns, the subscription is active (the server
// registers it before it sends the answer's header).
func (e *env) subscribe(t *testing.T, query string) *tapConn {
	t.Helper()
	req, _ := http.NewRequest("GET", e.adminURL("/tap?"+query), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /tap?%s: %d %s", query, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	c := &tapConn{resp: resp, lines: make(chan []byte, 10000)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, maxLine)
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return c
}

// next returns the next event (skipping drop reports), failing after a generous deadline.
func (c *tapConn) next(t *testing.T) EventJSON {
	t.Helper()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatal("tap stream ended")
			}
			var ev EventJSON
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("bad line %q: %v", line, err)
			}
			if ev.Method == "" {
				continue
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no tap event within 10 s")
		}
	}
}

// quiet fails if an event arrives within a short wait (a filter let something through).
func (c *tapConn) quiet(t *testing.T, name string) {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if ok {
			t.Errorf("%s: unexpected line %s", name, line)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTapStreamsFilteredEvents(t *testing.T) {
	e := start(t, "")
	f5xx := e.subscribe(t, "status=5xx")
	fPost := e.subscribe(t, "method=post")
	fPath := e.subscribe(t, "path=/api/fail")
	fNone := e.subscribe(t, "route=-")
	fSite := e.subscribe(t, "site=other.example:8080")
	fSiteOK := e.subscribe(t, "site=*&status=2xx&method=GET")
	// Subscribed last, so when it has seen an event every other tap has been offered it.
	all := e.subscribe(t, "header=User-Agent,X-Up,Authorization")
	if e.b.subscribers() != 7 {
		t.Fatalf("subscribers %d", e.b.subscribers())
	}

	if st := e.send(t, "GET", "/api/ok?q=1&api_key=very-secret-key", "User-Agent", "tap-test/1", "Authorization", "Bearer very-secret"); st != 200 {
		t.Fatalf("status %d", st)
	}
	e.send(t, "POST", "/api/ok")
	e.send(t, "GET", "/api/fail")
	e.send(t, "GET", "/nowhere")

	first := all.next(t)
	if first.Method != "GET" || first.Path != "/api/ok" || first.Query != "q=1&api_key=REDACTED" || first.Status != 200 ||
		first.Route != "/api" || first.Upstream != e.up.URL || first.Site != "*:8080" || first.RequestID == "" ||
		first.UpstreamMs == nil || first.DurationMs <= 0 || first.Bytes != 2 || first.IP != "127.0.0.1" ||
		!strings.HasPrefix(first.Host, "127.0.0.1:") {
		t.Fatalf("first event %+v", first)
	}
	if _, err := time.Parse(time.RFC3339Nano, first.Time); err != nil || !strings.HasSuffix(first.Time, "Z") {
		t.Fatalf("time %q", first.Time)
	}
	if first.RequestHeaders["User-Agent"] != "tap-test/1" || first.RequestHeaders["Authorization"] != Redacted ||
		first.ResponseHeaders["X-Up"] != "yes" || len(first.ResponseHeaders) != 1 {
		t.Fatalf("headers %v %v", first.RequestHeaders, first.ResponseHeaders)
	}
	var got []string
	for i := 0; i < 3; i++ {
		ev := all.next(t)
		got = append(got, fmt.Sprintf("%s %s %d %s", ev.Method, ev.Path, ev.Status, ev.Route))
		if ev.RequestHeaders != nil && ev.RequestHeaders["Authorization"] != "" {
			t.Errorf("authorization on an event without it: %+v", ev)
		}
	}
	want := []string{"POST /api/ok 200 /api", "GET /api/fail 503 /api", "GET /nowhere 404 "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", got, want)
	}

	expect := func(c *tapConn, name string, paths ...string) {
		t.Helper()
		for _, p := range paths {
			if ev := c.next(t); ev.Path != p {
				t.Errorf("%s: got %s %s, want %s", name, ev.Method, ev.Path, p)
			}
		}
		c.quiet(t, name)
	}
	expect(f5xx, "status=5xx", "/api/fail")
	expect(fPost, "method=post", "/api/ok")
	expect(fPath, "path=/api/fail", "/api/fail")
	expect(fNone, "route=-", "/nowhere")
	expect(fSite, "site=other")
	expect(fSiteOK, "site=*&status=2xx&method=GET", "/api/ok")

	// Closing a tap unsubscribes it.
	all.resp.Body.Close()
	waitFor(t, "the closed tap to unsubscribe", func() bool { return e.b.subscribers() == 6 })
}

func TestTapRequestErrors(t *testing.T) {
	e := start(t, "")
	for _, c := range []struct {
		path, auth string
		code       int
		body       string
	}{
		{"/tap", "", 401, ""},
		{"/tap?bogus=1", "Bearer " + adminToken, 400, `unknown parameter \"bogus\"`},
		{"/tap?status=7xx", "Bearer " + adminToken, 400, "status"},
		{"/tap?path=api", "Bearer " + adminToken, 400, "must start with /"},
	} {
		req, _ := http.NewRequest("GET", e.adminURL(c.path), nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.body) {
			t.Errorf("%s: %d %s, want %d %q", c.path, resp.StatusCode, b, c.code, c.body)
		}
	}
	if e.b.subscribers() != 0 {
		t.Fatalf("a refused tap stayed subscribed")
	}
}

// TestSlowSubscriberNeverBlocks: a tap that reads nothing does not hold requests up; its
// queue overflows, the overflow is counted, and the stream reports it once read again.
func TestSlowSubscriberNeverBlocks(t *testing.T) {
	e := start(t, "")
	e.b.mu.Lock()
	e.b.queue = 4
	e.b.mu.Unlock()
	// A raw connection with a small receive buffer that reads nothing yet.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", e.adminAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /tap?header=X-Pad HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", e.adminAddr(), adminToken)
	waitFor(t, "the subscription", func() bool { return e.b.subscribers() == 1 })
	sub := e.b.snap.Load().subs[0]

	pad := strings.Repeat("p", 1000)
	sent := 0
	for sub.lost.Load() == 0 {
		if sent == 200_000 {
			t.Fatal("no event was dropped after 200000 requests")
		}
		if st := e.send(t, "GET", "/api/ok", "X-Pad", pad); st != 200 {
			t.Fatalf("request %d: status %d", sent, st)
		}
		sent++
	}
	// More requests still complete while the tap is stuck.
	for i := 0; i < 50; i++ {
		e.send(t, "GET", "/api/ok", "X-Pad", pad)
		sent++
	}
	lost := sub.lost.Load()
	t.Logf("%d requests completed with a stuck tap; %d events dropped", sent, lost)

	// Now read: the events that were queued arrive, then drop reports adding up to what was
	// lost (sub.lost only grows; no more requests are sent).
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No resp.Body.Close: it would wait for the endless stream; closing conn ends it.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, maxLine)
	var reported int64
	events := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			var ev EventJSON
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			if ev.Method == "" && ev.Dropped > 0 {
				reported += ev.Dropped
			} else {
				events++
			}
			if int64(events)+reported == int64(sent) && reported == sub.lost.Load() {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		conn.Close()
		<-done
	}
	if reported != sub.lost.Load() || reported < lost {
		t.Fatalf("drop reports add up to %d, %d were lost", reported, sub.lost.Load())
	}
	if int64(events)+reported != int64(sent) {
		t.Fatalf("%d events + %d dropped != %d requests", events, reported, sent)
	}
}

func TestTapSurvivesReloadAndEndsOnShutdown(t *testing.T) {
	e := start(t, "")
	c := e.subscribe(t, "")
	first := e.srv.Current()
	e.write(t, "  - port: 8080\n    host: other.example\n    proxy: "+fmt.Sprintf("%q", e.up.URL)+"\n")
	req, _ := http.NewRequest("POST", e.adminURL("/reload"), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || e.srv.Current() == first {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	// The old generation is stopped once drained; the tap outlives it.
	waitFor(t, "the old generation to stop", func() bool { return e.b.live.Load() == 1 })
	e.send(t, "GET", "/api/after-reload")
	if ev := c.next(t); ev.Path != "/api/after-reload" || ev.Route != "/api" {
		t.Fatalf("after reload: %+v", ev)
	}
	// The new site from the reloaded config is tapped too.
	req, _ = http.NewRequest("GET", e.url("/x"), nil)
	req.Host = "other.example"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ev := c.next(t); ev.Site != "other.example:8080" || ev.Host != "other.example" {
		t.Fatalf("new site: %+v", ev)
	}

	// Shutting the server down ends the stream (the Admin API can then close).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	select {
	case _, ok := <-c.lines:
		for ok {
			_, ok = <-c.lines
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tap stream did not end on shutdown")
	}
	if e.b.subscribers() != 0 {
		t.Fatalf("subscribers after shutdown: %d", e.b.subscribers())
	}
}

func TestNoStageWithoutAdminAPI(t *testing.T) {
	up := upstream()
	defer up.Close()
	srv := servertest.Start(t, fmt.Sprintf("sites:\n  - port: 8080\n    proxy: %q\n", up.URL))
	for _, inst := range srv.Generation.Instances() {
		switch inst.(type) {
		case *stage, *service:
			t.Fatalf("tap instance %T in a config without an Admin API", inst)
		}
	}
	srv2 := servertest.Start(t, testConfig(up.URL, ""))
	var stages, services int
	for _, inst := range srv2.Generation.Instances() {
		switch inst.(type) {
		case *stage:
			stages++
		case *service:
			services++
		}
	}
	if stages != 1 || services != 1 {
		t.Fatalf("with an Admin API: %d stages, %d services", stages, services)
	}
}

// cliEnv runs a command with buffers for its streams.
type cliOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *cliOut) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *cliOut) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// TestStreamOutlivesServerTimeouts: a tap clears the connection's deadlines, so the Admin
// API's read timeout (30 s) or a write timeout cannot cut a long tap.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	b := newBroker()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(b.serveTap))
	hs.Config.ReadTimeout = 100 * time.Millisecond
	hs.Config.WriteTimeout = 100 * time.Millisecond
	hs.Start()
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/tap")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(500 * time.Millisecond) // well past both timeouts
	if b.subscribers() != 1 {
		t.Fatal("the tap ended when the read timeout passed")
	}
	b.snap.Load().publish(&Event{Method: "GET", Path: "/late", Status: 200, Time: time.Now()})
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"path":"/late"`) {
		t.Fatalf("after the timeouts: %q %v", line, err)
	}
}
