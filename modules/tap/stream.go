package tap

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// DropReportInterval is how often a stream reports the events it dropped.
const DropReportInterval = time.Second

// maxBatch is how many queued events are written before one flush.
const maxBatch = 256

// EventJSON is one line of GET /tap. Field names follow the access log's JSON format.
type EventJSON struct {
	Time            string            `json:"time"`
	Site            string            `json:"site"`
	Method          string            `json:"method"`
	Host            string            `json:"host"`
	Path            string            `json:"path"`
	Query           string            `json:"query,omitempty"`
	Proto           string            `json:"proto,omitempty"`
	Status          int               `json:"status"`
	Bytes           int64             `json:"bytes"`
	DurationMs      float64           `json:"duration_ms"`
	Route           string            `json:"route,omitempty"`
	Upstream        string            `json:"upstream,omitempty"`
	UpstreamMs      *float64          `json:"upstream_ms,omitempty"`
	RequestID       string            `json:"request_id,omitempty"`
	IP              string            `json:"ip,omitempty"`
	RequestHeaders  map[string]string `json:"request_headers,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	// Dropped is set (alone) on the periodic report of events a slow reader lost.
	Dropped int64 `json:"dropped,omitempty"`
}

// timeLayout is RFC 3339 in UTC with milliseconds, as the access log writes it.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// toJSON renders ev for a tap that asked for headers.
func toJSON(ev *Event, headers []string) EventJSON {
	out := EventJSON{
		Time: ev.Time.UTC().Format(timeLayout), Site: ev.Site, Method: ev.Method, Host: ev.Host,
		Path: ev.Path, Query: ev.Query, Proto: ev.Proto, Status: ev.Status, Bytes: ev.Bytes,
		DurationMs: ms(ev.Duration), Route: ev.Route, Upstream: ev.Upstream,
		RequestID: ev.RequestID, IP: ev.ClientIP,
	}
	if ev.Upstream != "" {
		u := ms(ev.UpstreamDuration)
		out.UpstreamMs = &u
	}
	for _, h := range headers {
		req, resp, ok := ev.header(h)
		if !ok {
			continue
		}
		if req != "" {
			if out.RequestHeaders == nil {
				out.RequestHeaders = map[string]string{}
			}
			out.RequestHeaders[h] = req
		}
		if resp != "" {
			if out.ResponseHeaders == nil {
				out.ResponseHeaders = map[string]string{}
			}
			out.ResponseHeaders[h] = resp
		}
	}
	return out
}

// ms is d in milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// serveTap is GET /tap: an NDJSON stream of the events that pass the query's filter, until
// the client goes away or the process stops.
func (b *broker) serveTap(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		core.AdminError(w, http.StatusBadRequest, "tap: "+err.Error())
		return
	}
	s, rc, ok := b.openStream(w, f, "tap", "application/x-ndjson")
	if !ok {
		return
	}
	defer b.unsubscribe(s)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	tick := time.NewTicker(DropReportInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case ev := <-s.ch:
			if err := writeBatch(enc, s, ev); err != nil {
				return
			}
		case <-tick.C:
			n := s.dropped.Swap(0)
			if n == 0 {
				continue
			}
			if err := enc.Encode(dropReport{Dropped: n}); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeBatch writes ev and whatever else is already queued (up to maxBatch), so a burst
// costs one flush.
func writeBatch(enc *json.Encoder, s *subscriber, ev *Event) error {
	for i := 0; ; i++ {
		if err := enc.Encode(toJSON(ev, s.f.Headers)); err != nil {
			return err
		}
		if i == maxBatch {
			return nil
		}
		select {
		case ev = <-s.ch:
		default:
			return nil
		}
	}
}

// dropReport is the periodic line that tells a slow reader how many events it lost since
// the previous report.
type dropReport struct {
	Dropped int64 `json:"dropped"`
}

// openStream starts an endless streamed answer of the given content type for a subscriber
// to the events f matches: no server read or write deadline cuts it, and the headers are
// flushed. ok is false when the answer was already given (503 when the subscriber limit is
// reached) or the client is gone; otherwise the caller unsubscribes s when it ends. name
// prefixes error messages ("tap", "top").
func (b *broker) openStream(w http.ResponseWriter, f *Filter, name, contentType string) (s *subscriber, rc *http.ResponseController, ok bool) {
	rc = http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	s, err := b.subscribe(f)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		core.AdminError(w, http.StatusServiceUnavailable, name+": "+err.Error())
		return nil, nil, false
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		b.unsubscribe(s)
		return nil, nil, false
	}
	return s, rc, true
}
