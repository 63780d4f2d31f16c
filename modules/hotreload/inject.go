package hotreload

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// closeBody is what the script tag goes in front of.
const closeBody = "</body>"

// Wrap implements core.Middleware: HTML responses get the client script tag before the
// first </body> (case-insensitive), or at the end when there is none. The body is streamed;
// at most len("</body")  bytes are held back between writes.
func (in *Instance) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		iw := in.writers.Get().(*writer)
		iw.reset(w, r.Method == http.MethodHead)
		done := false
		defer func() {
			if done {
				iw.finish()
			}
			iw.rw = nil
			in.writers.Put(iw)
		}()
		next.ServeHTTP(iw, r)
		done = true
	})
}

// writer injects the script tag into one response.
type writer struct {
	rw       http.ResponseWriter
	head     bool
	decided  bool
	inject   bool // this response is HTML we can change
	injected bool
	held     []byte
	scratch  []byte
}

func (w *writer) reset(rw http.ResponseWriter, head bool) {
	w.rw, w.head, w.decided, w.inject, w.injected = rw, head, false, false, false
	w.held, w.scratch = w.held[:0], w.scratch[:0]
}

// Header implements http.ResponseWriter.
func (w *writer) Header() http.Header { return w.rw.Header() }

// WriteHeader implements http.ResponseWriter.
func (w *writer) WriteHeader(code int) {
	if !w.decided && code >= 200 {
		w.decided = true
		w.inject = injectable(code, w.rw.Header())
		if w.inject {
			h := w.rw.Header()
			if cl := h.Get("Content-Length"); cl != "" {
				if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
					h.Set("Content-Length", strconv.FormatInt(n+int64(len(scriptTag)), 10))
				} else {
					h.Del("Content-Length")
				}
			}
			h.Del("Accept-Ranges")
		}
	}
	w.rw.WriteHeader(code)
}

// injectable reports whether a response is HTML whose body can be edited.
func injectable(code int, h http.Header) bool {
	if code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent {
		return false
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false // a pre-compressed sidecar; turn preCompressed off for development
	}
	ct := h.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/html")
}

// Write implements http.ResponseWriter.
func (w *writer) Write(p []byte) (int, error) {
	if !w.decided {
		if w.rw.Header().Get("Content-Type") == "" {
			w.rw.Header().Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	if !w.inject || w.injected || w.head {
		return w.rw.Write(p)
	}
	data := p
	if len(w.held) > 0 {
		w.scratch = append(append(w.scratch[:0], w.held...), p...)
		data = w.scratch
		w.held = w.held[:0]
	}
	if i := indexFold(data, closeBody); i >= 0 {
		if err := w.writeAll(data[:i], []byte(scriptTag), data[i:]); err != nil {
			return 0, err
		}
		w.injected = true
		return len(p), nil
	}
	k := partialSuffix(data)
	if err := w.writeAll(data[:len(data)-k]); err != nil {
		return 0, err
	}
	w.held = append(w.held, data[len(data)-k:]...)
	return len(p), nil
}

func (w *writer) writeAll(parts ...[]byte) error {
	for _, b := range parts {
		if len(b) == 0 {
			continue
		}
		if _, err := w.rw.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// finish writes what is held back and, when the body had no </body>, the tag at the end.
func (w *writer) finish() {
	if !w.decided || !w.inject || w.injected || w.head {
		return
	}
	_ = w.writeAll(w.held, []byte(scriptTag))
	w.held = w.held[:0]
}

// FlushError implements the flusher http.ResponseController looks for. Held-back bytes (a
// possible start of </body>) stay held.
func (w *writer) FlushError() error {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.rw).Flush()
}

// Flush implements http.Flusher.
func (w *writer) Flush() { _ = w.FlushError() }

// Hijack implements http.Hijacker.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.decided = true
	return http.NewResponseController(w.rw).Hijack()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.rw }

// indexFold returns the index of the first case-insensitive occurrence of the ASCII string
// sub in b, or -1.
func indexFold(b []byte, sub string) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if b[i] != '<' {
			continue
		}
		if strings.EqualFold(string(b[i:i+len(sub)]), sub) {
			return i
		}
	}
	return -1
}

// partialSuffix returns the length of the longest suffix of b that is a proper prefix of
// </body> (case-insensitive): those bytes may continue in the next write.
func partialSuffix(b []byte) int {
	for k := min(len(closeBody)-1, len(b)); k > 0; k-- {
		if strings.EqualFold(string(b[len(b)-k:]), closeBody[:k]) {
			return k
		}
	}
	return 0
}
