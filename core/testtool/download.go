package testtool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// SparseFile creates a file of size zero bytes at path without writing them (instant, and
// no disk space), for tests that need a large download.
func SparseFile(t testingT, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// PausedDownload sends GET target to addr on a new connection, waits pause before reading
// anything (a client that stops reading), then reads the whole 200 response body. It
// returns the body bytes read and the error that ended the body (nil: complete). A server
// that neither sends nor closes for 20 s fails the test.
func PausedDownload(t testingT, addr, target string, pause time.Duration) (int64, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response head: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server neither sent nor closed within 20 s (%d bytes)", n)
	}
	return n, err
}

// testingT is the part of testing.TB these helpers use.
type testingT interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
