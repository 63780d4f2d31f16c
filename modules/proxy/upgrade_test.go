package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// upgradeRecorder is a real upstream that records the Upgrade and Connection headers it got;
// it completes a WebSocket handshake (101) and answers anything else with 200.
func upgradeRecorder(t *testing.T) (*httptest.Server, chan http.Header) {
	t.Helper()
	ch := make(chan http.Header, 10)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.Header.Clone()
		if r.Header.Get("Upgrade") != "websocket" {
			fmt.Fprint(w, "plain")
			return
		}
		if conn, _, ok := acceptWebSocket(w); ok {
			conn.Close()
		}
	}))
	t.Cleanup(s.Close)
	return s, ch
}

// acceptWebSocket answers an upstream request with 101 and returns the hijacked connection.
func acceptWebSocket(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, false
	}
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, brw, true
}

// TestUpgradeOnlyWebSocket checks that a route forwards only the websocket upgrade token:
// any other Upgrade (h2c, a made-up protocol) is dropped with Connection's upgrade token and
// the request is proxied as a plain request, on WebSocket routes and on the others.
func TestUpgradeOnlyWebSocket(t *testing.T) {
	up, ch := upgradeRecorder(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /ws: { targets: [%q], websocket: true }
  /plain: %q
`, up.URL, up.URL))
	cases := []struct {
		name, path, upgrade, connection string
		status                          int
		upstreamUpgrade                 string // what the upstream must see ("" none); "-" not reached
	}{
		{"h2c on a websocket route", "/ws", "h2c", "Upgrade, HTTP2-Settings", 200, ""},
		{"made-up protocol on a websocket route", "/ws", "foo/2", "Upgrade", 200, ""},
		{"websocket among others", "/ws", "foo/2, websocket", "Upgrade", 101, "websocket"},
		{"websocket", "/ws", "websocket", "keep-alive, Upgrade", 101, "websocket"},
		{"h2c on a plain route", "/plain", "h2c", "Upgrade, HTTP2-Settings", 200, ""},
		{"websocket on a plain route", "/plain", "websocket", "Upgrade", 502, "-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.HostPort(8080))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: %s\r\nConnection: %s\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
				c.path, c.upgrade, c.connection)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.upstreamUpgrade == "-" {
				return
			}
			var got http.Header
			select {
			case got = <-ch:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream got no request")
			}
			if v := got.Values("Upgrade"); c.upstreamUpgrade == "" && len(v) != 0 || c.upstreamUpgrade != "" && (len(v) != 1 || v[0] != c.upstreamUpgrade) {
				t.Errorf("upstream Upgrade = %q, want %q", v, c.upstreamUpgrade)
			}
			conns := got.Values("Connection")
			if c.upstreamUpgrade == "" && len(conns) != 0 {
				t.Errorf("upstream Connection = %q, want none", conns)
			}
			if v := got.Values("Http2-Settings"); len(v) != 0 {
				t.Errorf("upstream HTTP2-Settings = %q, want none", v)
			}
		})
	}
}
