package http3

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/conduitproxy/conduit/core"
)

// connectionSpecific are the fields RFC 9114 §4.2 forbids in an HTTP/3 message: a response
// that carries one is malformed and clients refuse it. Stages written for HTTP/1 set some of
// them (`Connection: close` on a 400, on a limits denial); net/http's HTTP/2 server drops
// them, and quic-go's HTTP/3 server does not, so this module does.
var connectionSpecific = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// stripHandler adapts quic-go's requests and responses to what the pipeline expects of
// net/http: it keeps announced request trailers visible (trailerBody), drops
// connectionSpecific fields from every response header next sends, and resets the stream of
// a response whose body could not be written whole. quic-go ends a
// stream cleanly when the handler returns, unless a DATA frame was cut in the middle; after a
// write that failed between frames (the client stopped reading and the send timeout of
// core.GuardSend expired), a clean end would make a truncated body look complete to the
// client (HTTP/3 has no chunked terminator, and a streamed answer no Content-Length). Over
// HTTP/1 the connection closes and over HTTP/2 net/http resets the stream.
type stripHandler struct {
	next http.Handler
	pool sync.Pool
}

func newStripHandler(next http.Handler) *stripHandler {
	return &stripHandler{next: next, pool: sync.Pool{New: func() any { return new(stripWriter) }}}
}

// ServeHTTP implements http.Handler. CONNECT, plain or extended (RFC 9220, whose :protocol
// quic-go reports as r.Proto), is answered 501 as the HTTP/1.1 framing guard answers it:
// Conduit tunnels nothing.
func (s *stripHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if cw := watchOf(r); cw != nil {
		cw.begin()
		defer cw.end()
	}
	if r.Method == http.MethodConnect {
		core.Error(w, r, http.StatusNotImplemented, "CONNECT is not supported")
		return
	}
	if r.Trailer != nil && r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerBody{ReadCloser: r.Body, r: r, announced: r.Trailer}
	}
	sw := s.pool.Get().(*stripWriter)
	sw.ResponseWriter, sw.done, sw.failed = w, false, false
	s.next.ServeHTTP(sw, r)
	failed := sw.failed
	sw.ResponseWriter = nil
	s.pool.Put(sw)
	if failed {
		panic(http.ErrAbortHandler) // quic-go resets the stream, and logs nothing
	}
}

// stripWriter removes the connection-specific fields once, before the final header, and
// records a failed write.
type stripWriter struct {
	http.ResponseWriter
	done   bool
	failed bool
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
	n, err := w.ResponseWriter.Write(b)
	if err != nil && err != http.ErrBodyNotAllowed {
		w.failed = true
	}
	return n, err
}

// Flush implements http.Flusher.
func (w *stripWriter) Flush() {
	_ = w.FlushError()
}

// FlushError flushes like Flush and reports the error (http.ResponseController uses it).
func (w *stripWriter) FlushError() error {
	w.strip()
	err := http.NewResponseController(w.ResponseWriter).Flush()
	if err != nil {
		w.failed = true
	}
	return err
}

// Unwrap lets http.ResponseController reach the stream's deadlines.
func (w *stripWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// trailerBody keeps the request's trailer map. net/http fills the map of announced trailer
// names in place when the body ends; quic-go replaces r.Trailer with a new map instead, which
// the copies of r that the pipeline makes (r.WithContext) never see, so an announced trailer
// would never reach the upstream. At the end of the body, trailerBody copies the values into
// the announced map and puts it back. Trailers the client did not announce are dropped, as
// before.
type trailerBody struct {
	io.ReadCloser
	r         *http.Request
	announced http.Header
}

// Read implements io.Reader.
func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		if got := b.r.Trailer; got != nil {
			for k := range b.announced {
				if v, ok := got[k]; ok {
					b.announced[k] = v
				}
			}
		}
		b.r.Trailer = b.announced
	}
	return n, err
}
