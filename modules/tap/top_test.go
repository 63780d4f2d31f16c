package tap

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWindowReport(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := NewWindow(10*time.Second, t0)
	up := func(v float64) *float64 { return &v }
	// 100 requests on /api in the first 2 s: latencies 1..100 ms, 10 of them 5xx.
	for i := 1; i <= 100; i++ {
		st := 200
		if i%10 == 0 {
			st = 502
		}
		w.Add(&EventJSON{Method: "GET", Site: "*", Route: "/api", Upstream: "http://u1", Status: st, DurationMs: float64(i), UpstreamMs: up(float64(i) / 2)}, t0.Add(time.Duration(i)*20*time.Millisecond))
	}
	w.Add(&EventJSON{Method: "GET", Site: "*", Status: 404, DurationMs: 0.5}, t0.Add(time.Second))
	w.Add(&EventJSON{Dropped: 7}, t0.Add(time.Second))
	r := w.Report(t0.Add(2 * time.Second))
	if r.WindowSecs != 2 || r.Dropped != 7 {
		t.Fatalf("window %v dropped %d", r.WindowSecs, r.Dropped)
	}
	if len(r.Routes) != 2 || r.Routes[0].Name != "/api" || r.Routes[1].Name != "-" {
		t.Fatalf("routes %+v", r.Routes)
	}
	api := r.Routes[0]
	if api.Requests != 100 || api.RPS != 50 || api.Success != 0.9 || api.P50Ms != 50 || api.P99Ms != 99 {
		t.Fatalf("api row %+v", api)
	}
	if len(r.Upstreams) != 1 || r.Upstreams[0].P50Ms != 25 || r.Upstreams[0].P99Ms != 49.5 || r.Upstreams[0].Site != "" {
		t.Fatalf("upstreams %+v", r.Upstreams)
	}
	// 15 s later everything has slid out; the rate is over the full window.
	r = w.Report(t0.Add(15 * time.Second))
	if len(r.Routes) != 0 || r.WindowSecs != 10 || len(w.samples) != 0 {
		t.Fatalf("after the window: %+v (%d samples)", r, len(w.samples))
	}
	var buf bytes.Buffer
	r.Render(&buf, "http://127.0.0.1:2019")
	if !strings.Contains(buf.String(), "(no requests)") {
		t.Fatalf("empty render:\n%s", buf.String())
	}
}

func TestWindowKeepsOnlyTheWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := NewWindow(time.Second, t0)
	for i := 0; i < 30; i++ { // one event every 100 ms for 3 s
		w.Add(&EventJSON{Method: "GET", Route: "/r", Status: 200, DurationMs: 1}, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	r := w.Report(t0.Add(2950 * time.Millisecond))
	if len(r.Routes) != 1 || r.Routes[0].Requests != 10 || r.Routes[0].RPS != 10 {
		t.Fatalf("%+v", r.Routes)
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		vals []float64
		p    float64
		want float64
	}{
		{nil, 0.5, 0}, {[]float64{7}, 0.99, 7}, {[]float64{1, 2}, 0.5, 1}, {[]float64{1, 2, 3, 4}, 0.99, 4}, {[]float64{1, 2, 3, 4}, 0.5, 2},
	}
	for _, tt := range tests {
		if got := percentile(tt.vals, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.vals, tt.p, got, tt.want)
		}
	}
}

func TestRenderAndFormatLine(t *testing.T) {
	r := Report{Time: time.Now(), WindowSecs: 1, Routes: []Row{{Site: "*", Name: "/api", Requests: 3, RPS: 3, Success: 1, P50Ms: 1.5, P99Ms: 12}},
		Upstreams: []Row{{Name: "http://10.0.0.1:9000", Requests: 3, RPS: 3, Success: 2.0 / 3, P50Ms: 1, P99Ms: 1500}}}
	var buf bytes.Buffer
	r.Render(&buf, "http://127.0.0.1:2019")
	out := buf.String()
	for _, want := range []string{"ROUTE", "/api", "3.0", "100.0%", "1.500ms", "12.0ms", "UPSTREAM", "http://10.0.0.1:9000", "66.7%", "1.50s"} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
	ev := &EventJSON{Time: "2026-01-02T03:04:05.678Z", Method: "GET", Host: "example.com", Path: "/a\x1b[2J", Query: "q=1",
		Status: 502, DurationMs: 12.34, Route: "/api", Upstream: "http://10.0.0.1:9000", RequestID: "rid-1",
		RequestHeaders: map[string]string{"User-Agent": "curl/8"}, ResponseHeaders: map[string]string{"Content-Type": "text/plain"}}
	line := FormatLine(ev, []string{"User-Agent", "Content-Type"})
	for _, want := range []string{" 502 ", "12.3ms", "GET", `example.com/a\x1b[2J?q=1`, "/api → http://10.0.0.1:9000", "rid-1", `> User-Agent: "curl/8"`, `< Content-Type: "text/plain"`} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %q: %s", want, line)
		}
	}
	if strings.Contains(line, "\x1b") {
		t.Errorf("line keeps an escape: %q", line)
	}
	if l := FormatLine(&EventJSON{Time: "x", Method: "GET", Status: 404}, nil); !strings.Contains(l, "  -") {
		t.Errorf("no route: %q", l)
	}
}
