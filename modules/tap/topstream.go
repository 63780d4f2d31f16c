package tap

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// Bounds of GET /top's query: the report interval and the sliding window.
const (
	// MinTopInterval and MaxTopInterval bound ?interval= (default DefaultTopInterval).
	MinTopInterval     = 250 * time.Millisecond
	MaxTopInterval     = time.Minute
	DefaultTopInterval = time.Second
	// MaxTopWindow bounds ?window= (default DefaultTopWindow).
	MaxTopWindow     = 15 * time.Minute
	DefaultTopWindow = 10 * time.Second
)

// topQuery is GET /top's query: the tap filter plus the interval and the window.
type topQuery struct {
	filter   *Filter
	interval time.Duration
	window   time.Duration
}

// parseTopQuery reads GET /top's query: interval and window (Go durations, "1s", "30s"),
// and every parameter ParseFilter knows.
func parseTopQuery(q url.Values) (*topQuery, error) {
	tq := &topQuery{interval: DefaultTopInterval, window: DefaultTopWindow}
	rest := url.Values{}
	for k, v := range q {
		if k != "interval" && k != "window" {
			rest[k] = v
		}
	}
	dur := func(name string, def, lo, hi time.Duration) (time.Duration, error) {
		vs := q[name]
		switch len(vs) {
		case 0:
			return def, nil
		case 1:
		default:
			return 0, fmt.Errorf("%s: give it once", name)
		}
		d, err := time.ParseDuration(vs[0])
		if err != nil || d < lo || d > hi {
			return 0, fmt.Errorf("%s %q: want a duration between %s and %s", name, vs[0], lo, hi)
		}
		return d, nil
	}
	var err error
	if tq.interval, err = dur("interval", DefaultTopInterval, MinTopInterval, MaxTopInterval); err != nil {
		return nil, err
	}
	// The window is never shorter than the interval: without ?window=, an interval above
	// DefaultTopWindow makes the window one interval long.
	if tq.window, err = dur("window", max(DefaultTopWindow, tq.interval), tq.interval, MaxTopWindow); err != nil {
		return nil, err
	}
	if tq.filter, err = ParseFilter(rest); err != nil {
		return nil, err
	}
	if len(tq.filter.Headers) > 0 {
		return nil, fmt.Errorf("header: GET /top does not capture headers")
	}
	return tq, nil
}

// serveTop is GET /top: a server-sent event stream with one `conduit top --json` report
// (Report) every interval, computed by the same Window from the same tap events, until the
// client goes away or the process stops.
func (b *broker) serveTop(w http.ResponseWriter, r *http.Request) {
	tq, err := parseTopQuery(r.URL.Query())
	if err != nil {
		core.AdminError(w, http.StatusBadRequest, "top: "+err.Error())
		return
	}
	s, rc, ok := b.openStream(w, tq.filter, "top", "text/event-stream")
	if !ok {
		return
	}
	defer b.unsubscribe(s)
	win := NewWindow(tq.window, time.Now())
	tick := time.NewTicker(tq.interval)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case ev := <-s.ch:
			j := toJSON(ev, nil)
			win.Add(&j, time.Now())
		case now := <-tick.C:
			if n := s.dropped.Swap(0); n > 0 {
				win.Add(&EventJSON{Dropped: n}, now)
			}
			rep := win.Report(now)
			if rep.Routes == nil {
				rep.Routes = []Row{}
			}
			if rep.Upstreams == nil {
				rep.Upstreams = []Row{}
			}
			raw, err := json.Marshal(rep)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "event: report\ndata: %s\n\n", raw); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
