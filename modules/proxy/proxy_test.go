package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/limits"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// seen is what an upstream recorded about one request.
type seen struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	Body                         string
}

// echoUpstream is a real upstream that records requests and answers with its name.
func echoUpstream(t *testing.T, name string) (*httptest.Server, chan seen) {
	t.Helper()
	ch := make(chan seen, 100)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case ch <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Clone(), string(b)}:
		default: // nobody is reading this upstream's log
		}
		w.Header().Set("Server", "upstream-server")
		w.Header().Set("X-Upstream", name)
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "leak")
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s, ch
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProxyStringFormForwardsAndCleansHeaders(t *testing.T) {
	up, ch := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	resp, body := get(t, srv.URL(8080)+"/hello?x=1", map[string]string{
		"Connection": "X-Drop-Me", "X-Drop-Me": "1", "Keep-Alive": "timeout=5",
		"X-Forwarded-For": "203.0.113.9", "Proxy-Authorization": "Basic Zm9v",
	})
	if resp.StatusCode != 200 || body != "a /hello" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	got := <-ch
	if got.RawQuery != "x=1" {
		t.Errorf("query = %q", got.RawQuery)
	}
	for _, h := range []string{"X-Drop-Me", "Keep-Alive", "Proxy-Authorization"} {
		if got.Header.Get(h) != "" {
			t.Errorf("hop-by-hop header %s reached the upstream", h)
		}
	}
	if xff := got.Header.Get("X-Forwarded-For"); xff != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", xff)
	}
	if got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-Host") != srv.HostPort(8080) {
		t.Errorf("X-Forwarded-Proto/Host = %q %q", got.Header.Get("X-Forwarded-Proto"), got.Header.Get("X-Forwarded-Host"))
	}
	if got.Header.Get("Via") != "1.1 conduit" {
		t.Errorf("Via = %q", got.Header.Get("Via"))
	}
	if id := got.Header.Get("X-Request-Id"); len(id) != 36 || resp.Header.Get("X-Request-Id") != id {
		t.Errorf("X-Request-ID upstream %q, response %q", id, resp.Header.Get("X-Request-Id"))
	}
	if got.Host != srv.HostPort(8080) {
		t.Errorf("upstream Host = %q, want the client's", got.Host)
	}
	if resp.Header.Get("Server") != "" || resp.Header.Get("X-Secret-Hop") != "" {
		t.Errorf("response leaked Server %q or a Connection-named header %q", resp.Header.Get("Server"), resp.Header.Get("X-Secret-Hop"))
	}
	if resp.Header.Get("X-Upstream") != "a" {
		t.Errorf("X-Upstream = %q", resp.Header.Get("X-Upstream"))
	}
}

func TestProxyRequestIDPassesThrough(t *testing.T) {
	up, ch := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	resp, _ := get(t, srv.URL(8080)+"/", map[string]string{"X-Request-ID": "abc-123"})
	if got := (<-ch).Header.Get("X-Request-Id"); got != "abc-123" || resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("X-Request-ID = %q / %q", got, resp.Header.Get("X-Request-Id"))
	}
}

func TestProxyMapLongestPrefixStripAndBasePath(t *testing.T) {
	a, cha := echoUpstream(t, "a")
	b, chb := echoUpstream(t, "b")
	c, chc := echoUpstream(t, "c")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /: %q
  /api: { targets: [%q], stripPrefix: true }
  /api/v2: { targets: [%q], stripPrefix: true }
`, a.URL, b.URL, c.URL+"/base"))
	tests := []struct {
		path, want string
		ch         chan seen
		upPath     string
	}{
		{"/api/users", "b /users", chb, "/users"},
		{"/api", "b /", chb, "/"},
		{"/apix", "a /apix", cha, "/apix"},
		{"/api/v2/x", "c /base/x", chc, "/base/x"},
		{"/api/v20", "b /v20", chb, "/v20"},
		{"/other", "a /other", cha, "/other"},
	}
	for _, tt := range tests {
		_, body := get(t, srv.URL(8080)+tt.path, nil)
		if body != tt.want {
			t.Errorf("%s: body %q, want %q", tt.path, body, tt.want)
		}
		if got := <-tt.ch; got.Path != tt.upPath {
			t.Errorf("%s: upstream path %q, want %q", tt.path, got.Path, tt.upPath)
		}
	}
}

func TestProxyArrayRoundRobinAndWeights(t *testing.T) {
	a, _ := echoUpstream(t, "a")
	b, _ := echoUpstream(t, "b")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /rr: [%q, %q]
  /w:
    strategy: weighted-round-robin
    targets: [{url: %q, weight: 3}, {url: %q, weight: 1}]
`, a.URL, b.URL, a.URL, b.URL))
	count := map[string]int{}
	for range 10 {
		resp, _ := get(t, srv.URL(8080)+"/rr", nil)
		count[resp.Header.Get("X-Upstream")]++
	}
	if count["a"] != 5 || count["b"] != 5 {
		t.Errorf("round-robin split %v, want 5/5", count)
	}
	count = map[string]int{}
	for range 400 {
		resp, _ := get(t, srv.URL(8080)+"/w", nil)
		count[resp.Header.Get("X-Upstream")]++
	}
	if count["a"] != 300 || count["b"] != 100 {
		t.Errorf("weighted split %v, want exactly 300/100 over 400 requests", count)
	}
}

func TestRoutesMatchAndStripMatchPrefix(t *testing.T) {
	a, cha := echoUpstream(t, "a")
	b, _ := echoUpstream(t, "b")
	c, _ := echoUpstream(t, "c")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
routes:
  - match: { path: /api/v2/**, method: [get, POST], headers: { X-Version: "2|3" } }
    proxy: { targets: [%q], stripPrefix: true }
  - match: { query: { beta: "1" }, cookies: { exp: "blue|green" } }
    proxy: %q
  - match: { path: /** }
    proxy: %q
`, a.URL, b.URL, c.URL))
	_, body := get(t, srv.URL(8080)+"/api/v2/items", map[string]string{"X-Version": "3"})
	if body != "a /items" {
		t.Errorf("header route: %q", body)
	}
	if got := <-cha; got.Path != "/items" {
		t.Errorf("strip of match prefix: upstream path %q", got.Path)
	}
	_, body = get(t, srv.URL(8080)+"/api/v2/items", map[string]string{"X-Version": "1"})
	if body != "c /api/v2/items" {
		t.Errorf("non-matching header fell to %q", body)
	}
	_, body = get(t, srv.URL(8080)+"/p?beta=1", map[string]string{"Cookie": "exp=green"})
	if body != "b /p" {
		t.Errorf("query+cookie route: %q", body)
	}
	_, body = get(t, srv.URL(8080)+"/p?beta=1", map[string]string{"Cookie": "exp=red"})
	if body != "c /p" {
		t.Errorf("cookie mismatch: %q", body)
	}
}

func TestRewrite(t *testing.T) {
	a, ch := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /old:
    targets: [%q]
    rewrite:
      - { from: "^/old/(\\w+)/(\\d+)$", to: "/new/$2/$1" }
      - { from: "^/old/.*$", to: "/never" }
`, a.URL))
	get(t, srv.URL(8080)+"/old/item/42?k=v", nil)
	if got := <-ch; got.Path != "/new/42/item" || got.RawQuery != "k=v" {
		t.Fatalf("rewritten to %q ? %q", got.Path, got.RawQuery)
	}
}

func TestUpstreamFailures(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /dead: %q
  /slow: { targets: [%q], timeout: { firstByteMs: 100 } }
`, deadURL, slow.URL))
	resp, body := get(t, srv.URL(8080)+"/dead", nil)
	if resp.StatusCode != 502 || body != "Bad Gateway\n" {
		t.Errorf("dead upstream: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, srv.URL(8080)+"/dead", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != 502 || body != `{"error":"Bad Gateway","status":502}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("dead upstream, JSON: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, srv.URL(8080)+"/slow", nil)
	if resp.StatusCode != 504 || body != "Gateway Timeout\n" {
		t.Errorf("slow upstream: %d %q", resp.StatusCode, body)
	}
}

// TestClientGoneCancelsUpstream: a client that closes its connection ends the upstream
// request at once, whether the upstream has not answered yet (HTTP/1: the connection watch
// of the hot-path client, not the 30 s response-header timeout) or is mid-response.
func TestClientGoneCancelsUpstream(t *testing.T) {
	for _, midResponse := range []bool{false, true} {
		t.Run(fmt.Sprintf("midResponse=%v", midResponse), func(t *testing.T) {
			sent := make(chan struct{})
			cancelled := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if midResponse {
					w.WriteHeader(200)
					_, _ = w.Write([]byte("first"))
					w.(http.Flusher).Flush()
				}
				close(sent)
				<-r.Context().Done()
				close(cancelled)
			}))
			t.Cleanup(up.Close)
			srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
			conn, err := net.Dial("tcp", srv.HostPort(8080))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if midResponse {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 5)
				if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
					t.Fatalf("first chunk %q %v", buf, err)
				}
			}
			<-sent
			conn.Close()
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("upstream request was not cancelled after the client went away")
			}
		})
	}
}

func TestStreamingBothDirections(t *testing.T) {
	gotFirst := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the first part of a chunked request body before the client has sent the rest.
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Errorf("upstream read: %v", err)
			return
		}
		gotFirst <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", buf)
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "data: %s\n\n", rest)
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, srv.URL(8080)+"/stream", pr)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("request: %v", err)
			close(done)
			return
		}
		done <- resp
	}()
	_, _ = pw.Write([]byte("hello"))
	select {
	case first := <-gotFirst:
		if first != "hello" {
			t.Fatalf("upstream got %q", first)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request body was not streamed to the upstream")
	}
	_, _ = pw.Write([]byte(" world"))
	pw.Close()
	resp := <-done
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "data: hello\n\ndata:  world\n\n" {
		t.Fatalf("body %q", b)
	}
}

func TestTrailersAndEarlyHints(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Add("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		fmt.Fprintf(w, "got %s trailer %s", b, r.Trailer.Get("X-Req-Trailer"))
		w.Header().Set("X-Checksum", "abc")
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	var hints []int
	var mu sync.Mutex
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		hints = append(hints, code)
		mu.Unlock()
		return nil
	}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL(8080)+"/", io.NopCloser(strings.NewReader("body")))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Req-Trailer": {"t1"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "got body trailer t1" {
		t.Errorf("body %q", b)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailer %v", resp.Trailer)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hints) != 1 || hints[0] != 103 {
		t.Errorf("1xx seen by client: %v", hints)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, brw, ok := acceptWebSocket(w)
		if !ok {
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		fmt.Fprintf(brw, "echo:%s", line)
		brw.Flush()
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /ws: { targets: [%q], websocket: true }
  /nows: %q
`, up.URL, up.URL))
	conn, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// After 101 the connection carries the new protocol: bytes that look like HTTP must
	// pass the framing guard untouched.
	fmt.Fprintf(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:hello\n" {
		t.Fatalf("echo %q %v", line, err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL(8080)+"/nows", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 502 {
		t.Fatalf("upgrade without websocket: true got %d, want 502", resp2.StatusCode)
	}
}

func TestTransformsAndMaskErrors(t *testing.T) {
	up, ch := echoUpstream(t, "a")
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Stack", "secret")
		w.WriteHeader(503)
		io.WriteString(w, "panic at line 42")
	}))
	t.Cleanup(fail.Close)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
maskErrors: true
requestTransform:
  setHeaders: { X-Added: "yes", X-Forwarded-Host: "overridden" }
  removeHeaders: [authorization, x-forwarded-for]
responseTransform:
  setHeaders: { X-Served-By: conduit }
  removeHeaders: [x-upstream]
proxy:
  /: %q
  /fail: %q
`, up.URL, fail.URL))
	resp, _ := get(t, srv.URL(8080)+"/x", map[string]string{"Authorization": "Bearer t"})
	got := <-ch
	if got.Header.Get("X-Added") != "yes" || got.Header.Get("Authorization") != "" || got.Header.Get("X-Forwarded-For") != "" || got.Header.Get("X-Forwarded-Host") != "overridden" {
		t.Errorf("request transform: %v", got.Header)
	}
	if resp.Header.Get("X-Served-By") != "conduit" || resp.Header.Get("X-Upstream") != "" {
		t.Errorf("response transform: %v", resp.Header)
	}
	resp, body := get(t, srv.URL(8080)+"/fail", nil)
	if resp.StatusCode != 503 || body != `{"error":"Internal Server Error","status":500}` || resp.Header.Get("X-Stack") != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("maskErrors: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestLoopGuardAndProtectedConnectionHeader(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /: %q
  /self: "http://127.0.0.1:8080"
`, up.URL))
	resp, _ := get(t, srv.URL(8080)+"/self", nil)
	if resp.StatusCode != 421 {
		t.Errorf("self target: %d, want 421", resp.StatusCode)
	}
	resp, _ = get(t, srv.URL(8080)+"/", map[string]string{"Via": strings.Repeat("1.1 conduit, ", 8) + "1.1 other"})
	if resp.StatusCode != 421 {
		t.Errorf("Via loop: %d, want 421", resp.StatusCode)
	}
	resp, _ = get(t, srv.URL(8080)+"/", map[string]string{"Connection": "X-Forwarded-For"})
	if resp.StatusCode != 400 {
		t.Errorf("Connection: X-Forwarded-For got %d, want 400", resp.StatusCode)
	}
}

func TestLimitsBodyAndHeaders(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
limits: { maxBodyBytes: 10, maxRequestHeaders: 20 }
proxy: %q
`, up.URL))
	post := func(body io.Reader, n int64) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL(8080)+"/", body)
		req.ContentLength = n
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(strings.NewReader("0123456789"), 10); got != 200 {
		t.Errorf("body at the limit: %d", got)
	}
	if got := post(strings.NewReader("0123456789x"), 11); got != 413 {
		t.Errorf("declared oversized body: %d, want 413", got)
	}
	if got := post(io.NopCloser(strings.NewReader(strings.Repeat("y", 1000))), -1); got != 413 {
		t.Errorf("chunked oversized body: %d, want 413", got)
	}
	hdr := map[string]string{}
	for i := range 25 {
		hdr[fmt.Sprintf("X-H%d", i)] = "v"
	}
	if resp, _ := get(t, srv.URL(8080)+"/", hdr); resp.StatusCode != 431 {
		t.Errorf("too many headers: %d, want 431", resp.StatusCode)
	}
}

func TestMalformedRequestsAndUnknownHost(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf(`
- host: app.example.com
  port: 8080
  proxy: %q
`, up.URL))
	raw := func(req string) string {
		conn, err := net.Dial("tcp", srv.HostPort(8080))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, req)
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := raw("GET / HTTP/1.1\r\nHost: app.example.com:8080\r\n\r\n"); got != "HTTP/1.1 200 OK" {
		t.Errorf("known host with port: %q", got)
	}
	if got := raw("GET / HTTP/1.1\r\nHost: APP.example.com\r\n\r\n"); got != "HTTP/1.1 200 OK" {
		t.Errorf("host is case-insensitive: %q", got)
	}
	if got := raw("GET / HTTP/1.1\r\nHost: evil.example.com\r\n\r\n"); got != "HTTP/1.1 400 Bad Request" {
		t.Errorf("unknown host: %q", got)
	}
	if got := raw("GET / HTTP/1.1\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request") {
		t.Errorf("missing Host: %q", got)
	}
	if got := raw("GARBAGE\r\n\r\n"); got != "HTTP/1.1 400 Bad Request" {
		t.Errorf("garbage request line: %q", got)
	}
	if got := raw("GET / HTTP/1.1\r\nHost: app.example.com\r\nBad Header\r\n\r\n"); got != "HTTP/1.1 400 Bad Request" {
		t.Errorf("malformed header: %q", got)
	}
}

func TestHealthEndpointBypassesRouting(t *testing.T) {
	up, ch := echoUpstream(t, "a")
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	resp, body := get(t, srv.URL(8080)+"/__health__", nil)
	if resp.StatusCode != 200 || body != `{"status":"ok"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("health: %d %q", resp.StatusCode, body)
	}
	select {
	case s := <-ch:
		t.Fatalf("health request reached the upstream: %v", s.Path)
	default:
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil || m["status"] != "ok" {
		t.Fatal("health body is not {\"status\":\"ok\"}")
	}
}

func TestValidationErrorsHavePaths(t *testing.T) {
	cases := map[string]string{
		`{"proxy":"not-a-url"}`:                                                         "error at proxy: must be an absolute http:// or https:// URL",
		`{"proxy":{"/api":["http://ok:4000","ftp://bad:4000"]}}`:                        "error at proxy./api[1]",
		`{"proxy":{"/api":{"targets":[]}}}`:                                             "error at proxy./api.targets: needs at least one upstream URL",
		`{"proxy":{"/api":{"targets":["http://a"],"strategy":"rr"}}}`:                   "error at proxy./api.strategy: unknown strategy",
		`{"proxy":{"/api":{"targets":["http://a"],"rewrite":[{"from":"(","to":"x"}]}}}`: "error at proxy./api.rewrite[0].from: invalid regular expression",
		`{"proxy":{"api":"http://a"}}`:                                                  "error at proxy.api: a proxy prefix must start with",
		`[{"port":1,"proxy":{"/x":{"targets":[{"url":"http://a","weight":0}]}}}]`:       "error at sites[0].proxy./x.targets[0].weight: must be ≥ 1",
	}
	for src, want := range cases {
		_, d, err := servertest.Build(src, 1)
		if err != nil {
			t.Fatal(err)
		}
		if e := d.Err(); e == nil || !strings.Contains(e.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", src, e, want)
		}
	}
}

// TestClientGoneCancelsUpstreamH2C is TestClientGoneCancelsUpstream for an HTTP/2 client
// (h2c): the h1Client hears of the reset stream through context.AfterFunc on the stream's
// context rather than through core.WatchClient, which only HTTP/1 connections have.
func TestClientGoneCancelsUpstreamH2C(t *testing.T) {
	sent := make(chan struct{})
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(sent)
		<-r.Context().Done()
		close(cancelled)
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf("sites:\n  - port: 8080\n    http2: { h2c: true }\n    proxy: %q\n", up.URL))
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: protos}}
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sent
		cancel() // resets the stream; the client's connection stays open
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL(8080)+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the cancelled request got a response")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream request was not cancelled after the client reset its stream")
	}
}
