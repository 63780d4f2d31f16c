package tap

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseTopQuery(t *testing.T) {
	cases := []struct {
		query            string
		interval, window time.Duration
		routes           []string
		err              string
	}{
		{query: "", interval: DefaultTopInterval, window: DefaultTopWindow},
		{query: "interval=500ms&window=1m", interval: 500 * time.Millisecond, window: time.Minute},
		{query: "route=/api&status=5xx", interval: DefaultTopInterval, window: DefaultTopWindow, routes: []string{"/api"}},
		{query: "interval=1m", interval: time.Minute, window: time.Minute}, // default window grows to one interval
		{query: "interval=10ms", err: "interval"},
		{query: "interval=2m", err: "interval"},
		{query: "interval=2s&window=1s", err: "window"},
		{query: "window=1h", err: "window"},
		{query: "window=soon", err: "window"},
		{query: "interval=1s&interval=2s", err: "give it once"},
		{query: "header=X-A", err: "does not capture headers"},
		{query: "colour=red", err: "unknown parameter"},
		{query: "status=700", err: "status"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := parseTopQuery(q)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one about %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.interval != tc.interval || got.window != tc.window || strings.Join(got.filter.Routes, ",") != strings.Join(tc.routes, ",") {
				t.Errorf("got interval %s window %s routes %v", got.interval, got.window, got.filter.Routes)
			}
		})
	}
}

func FuzzTopQuery(f *testing.F) {
	for _, s := range []string{"", "interval=1s&window=10s", "route=/a&status=5xx", "window=-1s", "interval=1e9h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		tq, err := parseTopQuery(q)
		if err != nil {
			return
		}
		if tq.interval < MinTopInterval || tq.interval > MaxTopInterval || tq.window < tq.interval || tq.window > MaxTopWindow {
			t.Fatalf("interval %s window %s out of bounds", tq.interval, tq.window)
		}
		if len(tq.filter.Headers) != 0 {
			t.Fatal("top captures headers")
		}
	})
}

// TestTopStream reads GET /top while requests flow through a real Conduit: the reports are
// the ones `conduit top --json` prints, with the route's requests counted and its 5xx in
// the success rate.
func TestTopStream(t *testing.T) {
	e := start(t, "")
	req, _ := http.NewRequest("GET", e.adminURL("/top?interval=250ms&window=5s&route=/api"), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /top: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for range 8 {
		e.send(t, "GET", "/api/x")
	}
	for range 2 {
		e.send(t, "GET", "/api/fail")
	}
	e.send(t, "GET", "/other") // no route: filtered out by route=/api
	sc := bufio.NewScanner(resp.Body)
	deadline := time.Now().Add(5 * time.Second)
	event := ""
	for sc.Scan() && time.Now().Before(deadline) {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if event != "report" {
			t.Fatalf("event %q", event)
		}
		var rep Report
		if err := json.Unmarshal([]byte(data), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Routes) == 0 || rep.Routes[0].Requests < 10 {
			continue
		}
		r := rep.Routes[0]
		if len(rep.Routes) != 1 || r.Name != "/api" || r.Requests != 10 || r.Success != 0.8 || r.RPS <= 0 {
			t.Fatalf("report %+v, want one route /api with 10 requests at 80%% success", rep.Routes)
		}
		if len(rep.Upstreams) != 1 || rep.Upstreams[0].Name != e.up.URL {
			t.Fatalf("upstreams %+v", rep.Upstreams)
		}
		return
	}
	t.Fatal("no report counted the 10 requests within 5 s")
}
