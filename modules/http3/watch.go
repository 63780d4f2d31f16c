package http3

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	qhttp3 "github.com/quic-go/quic-go/http3"
)

// connWatch closes a connection that has had no request in progress for idle. QUIC's own
// idle timeout counts packets, so it never fires for a client that keeps its connection
// alive (PING frames) while it holds request streams open without sending their HEADERS
// frame, which quic-go's HTTP/3 server waits for without a deadline: the QUIC form of a
// slowloris, bounded on TCP by the listener's header timeout. One timer per connection; a
// request costs two atomic updates.
type connWatch struct {
	conn   *quic.Conn
	idle   time.Duration
	active atomic.Int64
	last   atomic.Int64 // unix nanoseconds of the last request start or end
	timer  *time.Timer
}

// connWatchKey is the connection context's key of its *connWatch.
type connWatchKey struct{}

// watchConn starts watching c, and returns ctx with the watch in it.
func watchConn(ctx context.Context, c *quic.Conn, idle time.Duration) context.Context {
	w := &connWatch{conn: c, idle: idle}
	w.last.Store(time.Now().UnixNano())
	w.timer = time.AfterFunc(idle, w.check)
	context.AfterFunc(c.Context(), func() { w.timer.Stop() })
	return context.WithValue(ctx, connWatchKey{}, w)
}

// check closes the connection when no request ran for idle, else looks again when the
// idle period could next end.
func (w *connWatch) check() {
	if w.conn.Context().Err() != nil {
		return
	}
	wait := w.idle
	if w.active.Load() == 0 {
		since := time.Since(time.Unix(0, w.last.Load()))
		if since >= w.idle {
			_ = w.conn.CloseWithError(quic.ApplicationErrorCode(qhttp3.ErrCodeNoError), "idle")
			return
		}
		wait = w.idle - since
	}
	w.timer.Reset(wait)
}

// begin and end bracket a request on the watched connection.
func (w *connWatch) begin() {
	w.active.Add(1)
	w.last.Store(time.Now().UnixNano())
}

func (w *connWatch) end() {
	w.last.Store(time.Now().UnixNano())
	w.active.Add(-1)
}

// watchOf returns the watch of r's connection, or nil.
func watchOf(r *http.Request) *connWatch {
	w, _ := r.Context().Value(connWatchKey{}).(*connWatch)
	return w
}
