package admin

import (
	"log/slog"
	"net/http"
	"time"
)

// loggedWriter records the status of one Admin API answer for the access log.
type loggedWriter struct {
	http.ResponseWriter
	a      *API
	r      *http.Request
	start  time.Time
	status int
}

// logRequest starts the access-log entry of r; done writes it.
func (a *API) logRequest(w http.ResponseWriter, r *http.Request) *loggedWriter {
	return &loggedWriter{ResponseWriter: w, a: a, r: r, start: time.Now()}
}

// WriteHeader implements http.ResponseWriter.
func (w *loggedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *loggedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// done logs the request: state-changing requests at Info, reads at Debug (the dashboard
// reads several times a second while it is open).
func (w *loggedWriter) done() {
	level := slog.LevelDebug
	if changesState(w.r.Method) {
		level = slog.LevelInfo
	}
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	w.a.opts.Logger.Log(w.r.Context(), level, "admin API request", "method", w.r.Method,
		"path", w.r.URL.Path, "status", status, "remote", w.r.RemoteAddr,
		"duration_ms", float64(time.Since(w.start).Microseconds())/1000)
}

// Flush implements http.Flusher (POST /shutdown flushes its answer before it stops).
func (w *loggedWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }
