package static_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// TestSlowReaderIsDisconnected downloads a file larger than the loopback socket buffers of
// both ends: a client that stops reading for longer than global.clientSendTimeoutMs loses
// the connection, a client that reads gets the whole file.
func TestSlowReaderIsDisconnected(t *testing.T) {
	const size = 48 << 20
	dir := t.TempDir()
	testtool.SparseFile(t, filepath.Join(dir, "big.bin"), size)
	srv := servertest.Start(t, fmt.Sprintf("global: { clientSendTimeoutMs: 300 }\nsites:\n  - port: 8080\n    static: %q\n", dir))
	cases := []struct {
		name     string
		pause    time.Duration
		complete bool
	}{
		{"reading client", 0, true},
		{"client that stops reading", 1500 * time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := testtool.PausedDownload(t, srv.HostPort(8080), "/big.bin", tc.pause)
			if got := err == nil && n == size; got != tc.complete {
				t.Fatalf("got %d of %d bytes (err %v), want complete=%v", n, size, err, tc.complete)
			}
		})
	}
}
