package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
)

// wsUpstream is a coder/websocket echo server. A text message "close-me" makes it close the
// connection with 4001 "server says bye"; the close status the client sent is reported on
// closes.
func wsUpstream(t *testing.T, closes chan<- websocket.CloseError) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"echo.v1"}})
		if err != nil {
			return
		}
		c.SetReadLimit(4 << 20)
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					closes <- ce
				}
				return
			}
			if typ == websocket.MessageText && string(msg) == "close-me" {
				_ = c.Close(4001, "server says bye")
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// TestWebSocketThroughProxy relays WebSocket sessions (HTTP/1.1 Upgrade, `websocket: true`)
// between two coder/websocket peers, over plain HTTP and over TLS: subprotocol negotiation,
// text and 1 MiB binary messages echoed byte-exact, and close handshakes started by either
// side with their code and reason.
func TestWebSocketThroughProxy(t *testing.T) {
	closes := make(chan websocket.CloseError, 4)
	up := wsUpstream(t, closes)
	ca := tlstest.NewCA(t, "WS CA")
	cert, key := ca.Server(t, "localhost").Write(t, t.TempDir(), "s")
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - port: 8080
    proxy:
      /ws: {targets: [%q], websocket: true}
      /nows: {targets: [%q]}
  - host: localhost
    port: 8443
    tls: {cert: %q, key: %q}
    proxy:
      /ws: {targets: [%q], websocket: true}
`, up.URL, up.URL, cert, key, up.URL))
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}}}
	for _, tc := range []struct {
		name, url string
		client    *http.Client
	}{
		{"plain", "ws://" + srv.HostPort(8080) + "/ws", nil},
		{"tls", "wss://" + srv.HostPort(8443) + "/ws", tlsClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dial := func() *websocket.Conn {
				c, resp, err := websocket.Dial(ctx, tc.url, &websocket.DialOptions{HTTPClient: tc.client, Subprotocols: []string{"echo.v1"}, Host: "localhost"})
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusSwitchingProtocols || c.Subprotocol() != "echo.v1" {
					t.Fatalf("handshake: %d, subprotocol %q", resp.StatusCode, c.Subprotocol())
				}
				c.SetReadLimit(4 << 20)
				return c
			}

			c := dial()
			if err := c.Write(ctx, websocket.MessageText, []byte("héllo")); err != nil {
				t.Fatal(err)
			}
			if typ, msg, err := c.Read(ctx); err != nil || typ != websocket.MessageText || string(msg) != "héllo" {
				t.Fatalf("text echo: %v %q %v", typ, msg, err)
			}
			big := make([]byte, 1<<20)
			_, _ = rand.Read(big)
			for range 3 {
				if err := c.Write(ctx, websocket.MessageBinary, big); err != nil {
					t.Fatal(err)
				}
				typ, msg, err := c.Read(ctx)
				if err != nil || typ != websocket.MessageBinary || !bytes.Equal(msg, big) {
					t.Fatalf("1 MiB binary echo: type %v, %d bytes, err %v", typ, len(msg), err)
				}
			}
			// Client-initiated close: the upstream sees the client's code and reason.
			if err := c.Close(websocket.StatusGoingAway, "client says bye"); err != nil {
				t.Fatalf("close handshake: %v", err)
			}
			select {
			case ce := <-closes:
				if ce.Code != websocket.StatusGoingAway || ce.Reason != "client says bye" {
					t.Fatalf("upstream saw close %d %q", ce.Code, ce.Reason)
				}
			case <-ctx.Done():
				t.Fatal("the upstream never saw the client's close frame")
			}

			// Server-initiated close: the client sees the upstream's code and reason.
			c = dial()
			if err := c.Write(ctx, websocket.MessageText, []byte("close-me")); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.Read(ctx)
			if got := websocket.CloseStatus(err); got != 4001 {
				t.Fatalf("client read after upstream close: %v (status %d), want 4001", err, got)
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Reason != "server says bye" {
				t.Fatalf("close reason %q", ce.Reason)
			}
		})
	}
	t.Run("not enabled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, "ws://"+srv.HostPort(8080)+"/nows", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("upgrade on a route without websocket: true: %v %v", resp, err)
		}
	})
}
