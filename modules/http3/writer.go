package http3

import (
	"net/http"
	"sync"
)

// connectionSpecific are the fields RFC 9114 §4.2 forbids in an HTTP/3 message: a response
// that carries one is malformed and clients refuse it. Stages written for HTTP/1 set some of
// them (`Connection: close` on a 400, on a limits denial); net/http's HTTP/2 server drops
// them, and quic-go's HTTP/3 server does not, so this module does.
var connectionSpecific = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// stripHandler drops connectionSpecific fields from every response header next sends.
type stripHandler struct {
	next http.Handler
	pool sync.Pool
}

func newStripHandler(next http.Handler) *stripHandler {
	return &stripHandler{next: next, pool: sync.Pool{New: func() any { return new(stripWriter) }}}
}

// ServeHTTP implements http.Handler.
func (s *stripHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := s.pool.Get().(*stripWriter)
	sw.ResponseWriter, sw.done = w, false
	s.next.ServeHTTP(sw, r)
	sw.ResponseWriter = nil
	s.pool.Put(sw)
}

// stripWriter removes the connection-specific fields once, before the final header.
type stripWriter struct {
	http.ResponseWriter
	done bool
}

func (w *stripWriter) strip() {
	if w.done {
		return
	}
	w.done = true
	h := w.ResponseWriter.Header()
	for _, k := range connectionSpecific {
		delete(h, k)
	}
}

// WriteHeader implements http.ResponseWriter; informational answers are cleaned too.
func (w *stripWriter) WriteHeader(code int) {
	if code < 200 {
		h := w.ResponseWriter.Header()
		for _, k := range connectionSpecific {
			delete(h, k)
		}
	} else {
		w.strip()
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *stripWriter) Write(b []byte) (int, error) {
	w.strip()
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *stripWriter) Flush() {
	w.strip()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the stream's deadlines.
func (w *stripWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
