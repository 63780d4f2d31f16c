package core

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deadRD is a connection whose deadlines may not be touched once its handler ended: net/http's
// HTTP/2 response writer panics (nil pointer) when used after its handler returned, while the
// upstream transport may still be sending the request body.
type deadRD struct {
	finished atomic.Bool
	late     atomic.Int64 // SetReadDeadline calls after finished
}

// SetReadDeadline counts a call made after the handler finished.
func (d *deadRD) SetReadDeadline(time.Time) error {
	if d.finished.Load() {
		d.late.Add(1)
	}
	return nil
}

// oneByte is a body that never ends: every Read returns one byte.
type oneByte struct{}

// Read returns one byte.
func (oneByte) Read(p []byte) (int, error) { p[0] = 'x'; return 1, nil }

// TestGuardedBodyNoDeadlineAfterEnd: once End returned, no Read sets the connection's read
// deadline, even a Read racing with End (an HTTP/2 upstream transport sending the body while
// the handler returns).
func TestGuardedBodyNoDeadlineAfterEnd(t *testing.T) {
	for range 2000 {
		rd := &deadRD{}
		b := &GuardedBody{ReadCloser: io.NopCloser(oneByte{}), rd: rd}
		b.setTimeout(time.Nanosecond) // every read moves the deadline
		b.slack = 0
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1)
			for {
				select {
				case <-stop:
					return
				default:
					_, _ = b.Read(p)
				}
			}
		}()
		b.End()
		rd.finished.Store(true) // the handler returned: net/http finishes the writer
		time.Sleep(10 * time.Microsecond)
		close(stop)
		wg.Wait()
		if n := rd.late.Load(); n != 0 {
			t.Fatalf("%d read deadlines set after End returned", n)
		}
	}
}
