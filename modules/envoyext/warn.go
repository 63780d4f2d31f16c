package envoyext

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Warner logs a service's failures at most once per 10 s, so a service that is down does not
// flood the log with one line per request. The zero value needs Log set before use.
type Warner struct {
	// Log receives the lines; Prefix starts each message ("extAuthz: "), Target names the
	// service.
	Log    *slog.Logger
	Prefix string
	Target string
	last   atomic.Int64
}

// Warn logs msg with err unless a line was logged less than 10 s ago or err is a client
// that went away (context.Canceled).
func (w *Warner) Warn(msg string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	now := time.Now().UnixNano()
	last := w.last.Load()
	if now-last < int64(10*time.Second) || !w.last.CompareAndSwap(last, now) {
		return
	}
	w.Log.Warn(w.Prefix+msg, "target", w.Target, "error", err)
}
