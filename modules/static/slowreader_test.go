package static_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// TestSlowReaderIsDisconnected downloads a file larger than the loopback socket buffers and
// the HTTP/2 flow-control window: a client that stops reading for longer than
// global.clientSendTimeoutMs loses the connection (HTTP/1.1: the framing guard's write
// deadline) or the stream (h2c: the client grants no window, so the stream stalls while the
// connection is fine; the stream's write deadline resets it), while a reading client gets the
// whole file.
func TestSlowReaderIsDisconnected(t *testing.T) {
	const size = 48 << 20
	dir := t.TempDir()
	testtool.SparseFile(t, filepath.Join(dir, "big.bin"), size)
	srv := servertest.Start(t, fmt.Sprintf("global: { clientSendTimeoutMs: 300 }\nsites:\n  - port: 8080\n    http2: { h2c: true }\n    static: %q\n", dir))
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: protos}}
	t.Cleanup(h2c.CloseIdleConnections)
	download := map[string]func(t *testing.T, pause time.Duration) (int64, error){
		"HTTP/1.1": func(t *testing.T, pause time.Duration) (int64, error) {
			return testtool.PausedDownload(t, srv.HostPort(8080), "/big.bin", pause)
		},
		"h2c": func(t *testing.T, pause time.Duration) (int64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL(8080)+"/big.bin", nil)
			resp, err := h2c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP/%d %d", resp.ProtoMajor, resp.StatusCode)
			}
			time.Sleep(pause)
			n, err := io.Copy(io.Discard, resp.Body)
			if ctx.Err() != nil {
				t.Fatalf("Conduit neither sent nor reset the stream within 20 s (%d bytes)", n)
			}
			return n, err
		},
	}
	cases := []struct {
		proto    string
		pause    time.Duration
		complete bool
	}{
		{"HTTP/1.1", 0, true},
		{"HTTP/1.1", 1500 * time.Millisecond, false},
		{"h2c", 0, true},
		{"h2c", 1500 * time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s pause %v", tc.proto, tc.pause), func(t *testing.T) {
			n, err := download[tc.proto](t, tc.pause)
			if got := err == nil && n == size; got != tc.complete {
				t.Fatalf("got %d of %d bytes (err %v), want complete=%v", n, size, err, tc.complete)
			}
		})
	}
}
