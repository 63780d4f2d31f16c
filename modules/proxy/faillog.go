package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// failLogEvery is how often one route's failures to one upstream are logged at most; the
// failures in between are counted and reported as `suppressed` on the next line.
const failLogEvery = int64(10 * time.Second)

// logLimiter lets one log line through per failLogEvery and counts the ones it holds back.
type logLimiter struct {
	last       atomic.Int64 // unix ns of the last line; 0 = none yet
	suppressed atomic.Int64
}

// allow reports whether a line may be logged at now, and how many were held back since
// the last one.
func (l *logLimiter) allow(now int64) (ok bool, suppressed int64) {
	last := l.last.Load()
	if last != 0 && now-last < failLogEvery || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// logFailure logs a failed upstream attempt answered with status: the route, the upstream,
// the cause and the request id, at most once per failLogEvery per route and upstream.
func (rt *route) logFailure(r *http.Request, up *upstream, status int, err error) {
	log := rt.site.log
	if log == nil || up == nil {
		return
	}
	ok, suppressed := up.failLog.allow(time.Now().UnixNano())
	if !ok {
		return
	}
	log.Warn("proxy: upstream failed", "route", rt.name, "upstream", up.label, "status", status,
		"error", err.Error(), "request_id", requestID(r), "suppressed", suppressed)
}

// logRouting logs, at debug level, the upstream an attempt of r was sent to. It costs one
// Enabled check when debug is off.
func (rt *route) logRouting(r *http.Request, up *upstream, attempt int) {
	log := rt.site.log
	if log == nil || !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	log.Debug("proxy: routing", "site", rt.site.site.Label, "host", r.Host, "path", r.URL.Path, "route", rt.name,
		"upstream", up.label, "attempt", attempt, "request_id", requestID(r))
}

// requestID is r's X-Request-ID as the pipeline recorded it, "" outside the pipeline.
func requestID(r *http.Request) string {
	if st := core.State(r); st != nil {
		return st.ID
	}
	return ""
}
