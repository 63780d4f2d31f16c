package wasm

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/conduitproxy/conduit/core"
)

// responseWriter runs a response-phase guest's on_response when the response's final
// header is written, before it reaches the client. The guest sees the status and the
// header (no body: the body streams past it), may change the header, and may replace the
// body; a replaced body drops the upstream's Content-Encoding, Transfer-Encoding, ETag and
// Content-MD5, gets its own Content-Length, and the upstream's body is discarded.
type responseWriter struct {
	http.ResponseWriter
	e       *conduitEntry
	r       *http.Request
	decided bool // the final header went out (or the connection was hijacked)
	discard bool // the body was replaced: drop what the handler writes
	c       call // the on_response call, allocated with the writer
}

// bodyDropped are the header fields a replaced body makes wrong.
var bodyDropped = []string{"Content-Encoding", "Transfer-Encoding", "Etag", "Content-Md5"}

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if w.decided {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if code < 200 {
		if code == http.StatusSwitchingProtocols {
			w.decided = true
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.decided = true
	if st := core.State(w.r); st != nil && st.MaskedError {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.run(code)
}

// run calls on_response for status code and writes the header (and a replaced body).
func (w *responseWriter) run(code int) {
	e := w.e
	w.c = call{Context: context.Background(), e: e, r: w.r}
	c := &w.c
	h := w.ResponseWriter.Header()
	c.response, c.hdr, c.status = true, h, code
	c.bodyIgnored = !bodyAllowed(code) || h.Get("Content-Length") == "0"
	_, err := e.invoke(c, api32(code))
	if err != nil {
		e.failed(err)
		if e.spec.deny {
			w.discard = true
			clear(h)
			core.Error(w.ResponseWriter, w.r, http.StatusInternalServerError, "wasm middleware failed")
			return
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !c.bodySet {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	for _, k := range bodyDropped {
		delete(h, k)
	}
	w.discard = true
	h.Set("Content-Length", strconv.Itoa(len(c.body)))
	w.ResponseWriter.WriteHeader(code)
	if w.r.Method != http.MethodHead && len(c.body) > 0 {
		_, _ = w.ResponseWriter.Write(c.body)
	}
}

// api32 encodes a status as an i32 argument.
func api32(v int) uint64 { return uint64(uint32(int32(v))) }

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker; the guest does not run on a hijacked connection.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.decided = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish runs when the handler returned: a handler that wrote nothing answered 200.
func (w *responseWriter) finish() {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
}
