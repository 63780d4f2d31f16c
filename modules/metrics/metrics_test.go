package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/telemetry"
)

func TestConfigDecode(t *testing.T) {
	tok := config.Node("s3cret")
	tests := []struct {
		name    string
		node    config.Node
		enabled bool
		path    string
		token   string
		errPath string
		warn    string
	}{
		{"true", true, true, "", "", "", ""},
		{"false", false, false, "", "", "", ""},
		{"empty object", map[string]config.Node{}, true, "", "", "", ""},
		{"path", map[string]config.Node{"path": "/m"}, true, "/m", "", "", ""},
		{"token", map[string]config.Node{"token": tok}, true, "", "s3cret", "", ""},
		{"path without slash (validators_sink)", map[string]config.Node{"path": "metrics"}, true, "", "", "sites[0].metrics.path", ""},
		{"empty path", map[string]config.Node{"path": ""}, true, "", "", "sites[0].metrics.path", ""},
		{"path with query", map[string]config.Node{"path": "/m?x=1"}, true, "", "", "sites[0].metrics.path", ""},
		{"empty token (validators_sink)", map[string]config.Node{"token": ""}, true, "", "", "sites[0].metrics.token", ""},
		{"number", 3.0, false, "", "", "sites[0].metrics", ""},
		{"string", "yes", false, "", "", "sites[0].metrics", ""},
		{"unknown key", map[string]config.Node{"pth": "/m"}, true, "", "", "", "sites[0].metrics.pth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			d := &config.Diagnostics{}
			config.Decode(tt.node, "sites[0].metrics", &c, d)
			if tt.errPath != "" {
				if errs := d.Errors(); len(errs) != 1 || errs[0].Path != tt.errPath {
					t.Fatalf("errors = %v; want one at %s", errs, tt.errPath)
				}
				return
			}
			if d.HasErrors() {
				t.Fatalf("unexpected errors: %v", d.Errors())
			}
			if tt.warn != "" {
				if w := d.Warnings(); len(w) != 1 || w[0].Path != tt.warn {
					t.Fatalf("warnings = %v; want one at %s", w, tt.warn)
				}
			}
			if c.Enabled != tt.enabled || (tt.path != "" && c.Path != tt.path) {
				t.Fatalf("got %+v", c)
			}
			if tt.token != "" && (c.Token == nil || c.Token.Reveal() != tt.token) {
				t.Fatalf("token = %v", c.Token)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	tok := []byte("tok-123")
	tests := []struct {
		header string
		ok     bool
	}{
		{"Bearer tok-123", true},
		{"bearer tok-123", true},
		{"BEARER tok-123", true},
		{"Bearer   tok-123", true},
		{"Bearer tok-1234", false},
		{"Bearer tok-12", false},
		{"Bearer ", false},
		{"Basic tok-123", false},
		{"tok-123", false},
		{"", false},
		{"Bearertok-123", false},
	}
	for _, tt := range tests {
		if got := bearerOK(tt.header, tok); got != tt.ok {
			t.Errorf("bearerOK(%q) = %v; want %v", tt.header, got, tt.ok)
		}
	}
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer x", "bearer  x", "", "Basic x", "BEARER"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		ok := bearerOK(h, []byte("x"))
		if ok && !strings.HasSuffix(h, "x") {
			t.Fatalf("accepted %q", h)
		}
	})
}

func FuzzConfig(f *testing.F) {
	for _, s := range []string{"/m", "metrics", "", "/m?x", "/a b"} {
		f.Add(s, "tok")
	}
	f.Fuzz(func(t *testing.T, path, token string) {
		var c Config
		d := &config.Diagnostics{}
		config.Decode(map[string]config.Node{"path": path, "token": token}, "m", &c, d)
		if !d.HasErrors() && (c.Path == "" || c.Path[0] != '/') {
			t.Fatalf("accepted path %q", path)
		}
		if token == "" && !d.HasErrors() {
			t.Fatal("accepted an empty token")
		}
	})
}

// newSite provisions the module for a site with the given metrics section.
func newSite(t testing.TB, node config.Node, reg *telemetry.Registry) (*site, *config.Diagnostics) {
	t.Helper()
	inst, d := provisionRaw(t, node, reg)
	if inst == nil {
		return nil, d
	}
	s, ok := inst.(*site)
	if !ok {
		t.Fatalf("provision returned %T, want *site", inst)
	}
	return s, d
}

// provisionRaw provisions the metrics key node for one site and returns the instance as the
// server would see it.
func provisionRaw(t testing.TB, node config.Node, reg *telemetry.Registry) (core.SiteInstance, *config.Diagnostics) {
	t.Helper()
	d := &config.Diagnostics{}
	g := core.NewGlobalContext(context.Background(), nil, d, nil, reg)
	info := &core.Site{Label: "*", Path: "sites[0]", Port: 8080}
	ctx := core.NewSiteContext(context.Background(), info, map[string]config.Node{"metrics": node}, g, nil)
	inst := provision(ctx)
	return inst, d
}

// serve runs h through a pooled request state, as the server does.
func serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	st, r := core.AcquireState(w, r, &core.Site{Label: "*"}, time.Now())
	defer core.ReleaseState(st)
	h.ServeHTTP(&st.Writer, r)
}

func TestRecordsRequests(t *testing.T) {
	reg := telemetry.NewRegistry()
	s, _ := newSite(t, true, reg)
	var inFlight float64
	h := s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight = s.rec.active.Value()
		switch r.URL.Path {
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		case "/nothing":
		default:
			_, _ = io.WriteString(w, "hi")
		}
	}))
	for _, req := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/"}, {"POST", "/teapot"}, {"BREW", "/"}, {"GET", "/nothing"},
	} {
		serve(h, httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	if inFlight != 1 {
		t.Errorf("in flight during the request = %v; want 1", inFlight)
	}
	if v := s.rec.active.Value(); v != 0 {
		t.Errorf("in flight after = %v", v)
	}
	fam := reg.Counter(RequestsTotal, "", "method", "status")
	want := map[string]float64{"GET 200": 3, "POST 418": 1, "_OTHER 200": 1}
	got := map[string]float64{}
	for _, m := range fam.Children() {
		got[strings.Join(m.LabelValues, " ")] = m.Value()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %s = %v; want %v (all: %v)", RequestsTotal, k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("children = %v; want %v", got, want)
	}
	hist := reg.Histogram(RequestDurationSeconds, "", nil, "method", "status").With("GET", "200")
	if hist.Count() != 3 {
		t.Errorf("histogram count = %d", hist.Count())
	}
}

func TestPanicStillRecords(t *testing.T) {
	reg := telemetry.NewRegistry()
	s, _ := newSite(t, true, reg)
	h := s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() { _ = recover() }()
		serve(h, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if v := s.rec.active.Value(); v != 0 {
		t.Fatalf("in flight leaked: %v", v)
	}
	if v := reg.Counter(RequestsTotal, "", "method", "status").With("GET", "502").Value(); v != 1 {
		t.Fatalf("502 count = %v", v)
	}
}

func TestRecordsAttempts(t *testing.T) {
	reg := telemetry.NewRegistry()
	s, _ := newSite(t, true, reg)
	r := httptest.NewRequest("GET", "/", nil)
	for _, a := range []core.UpstreamAttempt{
		{Route: "/api", Upstream: "http://a:1", Status: 200, Duration: 2 * time.Millisecond},
		{Route: "/api", Upstream: "http://a:1", Status: 503, Duration: 20 * time.Millisecond},
		{Route: "/api", Upstream: "http://b:1", Err: errors.New("refused"), Duration: time.Millisecond, Retry: true},
	} {
		s.ObserveAttempt(r, &a)
	}
	up := reg.Counter(UpstreamRequestsTotal, "", "upstream", "status")
	for _, c := range []struct {
		labels []string
		want   float64
	}{{[]string{"http://a:1", "200"}, 1}, {[]string{"http://a:1", "503"}, 1}, {[]string{"http://b:1", "0"}, 1}} {
		if v := up.With(c.labels...).Value(); v != c.want {
			t.Errorf("%s%v = %v; want %v", UpstreamRequestsTotal, c.labels, v, c.want)
		}
	}
	if v := reg.Counter(UpstreamErrorsTotal, "", "route", "status").With("/api", "503").Value(); v != 1 {
		t.Errorf("upstream errors = %v", v)
	}
	if n := len(reg.Counter(UpstreamErrorsTotal, "", "route", "status").Children()); n != 1 {
		t.Errorf("errors children = %d; a connection error is not a 5xx", n)
	}
	if c := reg.Histogram(UpstreamLatencySeconds, "", nil, "upstream").With("http://a:1").Count(); c != 2 {
		t.Errorf("latency count = %d", c)
	}
}

func TestEndpointTokenAndMethods(t *testing.T) {
	reg := telemetry.NewRegistry()
	s, d := newSite(t, map[string]config.Node{"path": "/m", "token": "tok"}, reg)
	if d.HasErrors() {
		t.Fatal(d.Errors())
	}
	eps := s.Endpoints()
	if len(eps) != 1 || eps[0].Path != "/m" {
		t.Fatalf("endpoints = %+v", eps)
	}
	tests := []struct {
		method, auth string
		status       int
	}{
		{"GET", "", 401},
		{"GET", "Bearer nope", 401},
		{"GET", "Bearer tok", 200},
		{"GET", "bearer tok", 200},
		{"HEAD", "Bearer tok", 200},
		{"POST", "Bearer tok", 405},
		{"POST", "", 401},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/m", nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		w := httptest.NewRecorder()
		eps[0].Handler.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s auth=%q: %d; want %d", tt.method, tt.auth, w.Code, tt.status)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
}

func TestDisabledSiteHasNoInstance(t *testing.T) {
	inst, d := provisionRaw(t, false, telemetry.NewRegistry())
	if inst != nil {
		t.Fatalf("metrics: false must not provision anything, got %T", inst)
	}
	if d.HasErrors() {
		t.Fatalf("metrics: false: %v", d.Errors())
	}
}

// BenchmarkRecord measures the recording middleware around an empty handler (compare with
// BenchmarkBaseline: the difference is what metrics cost per request).
func BenchmarkRecord(b *testing.B) {
	s, _ := newSite(b, true, telemetry.NewRegistry())
	h := s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	benchHandler(b, h)
}

// BenchmarkBaseline is the same request path without metrics.
func BenchmarkBaseline(b *testing.B) {
	benchHandler(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
}

func benchHandler(b *testing.B, h http.Handler) {
	r := httptest.NewRequest("GET", "/x", nil)
	w := nopWriter{h: http.Header{}}
	site := &core.Site{Label: "*"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, r2 := core.AcquireState(w, r, site, time.Now())
		h.ServeHTTP(&st.Writer, r2)
		core.ReleaseState(st)
	}
}

// BenchmarkAttempt measures recording one upstream attempt.
func BenchmarkAttempt(b *testing.B) {
	s, _ := newSite(b, true, telemetry.NewRegistry())
	r := httptest.NewRequest("GET", "/", nil)
	a := &core.UpstreamAttempt{Route: "/api", Upstream: "http://a:1", Status: 200, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		s.ObserveAttempt(r, a)
	}
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	s, _ := newSite(t, true, telemetry.NewRegistry())
	h := s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	base := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	r := httptest.NewRequest("GET", "/x", nil)
	w := nopWriter{h: http.Header{}}
	site := &core.Site{Label: "*"}
	run := func(h http.Handler) float64 {
		return testing.AllocsPerRun(200, func() {
			st, r2 := core.AcquireState(w, r, site, time.Now())
			h.ServeHTTP(&st.Writer, r2)
			core.ReleaseState(st)
		})
	}
	run(h) // create the children
	if with, without := run(h), run(base); with > without {
		t.Fatalf("metrics add %v allocations per request", with-without)
	}
	a := &core.UpstreamAttempt{Route: "/api", Upstream: "http://a:1", Status: 502, Duration: time.Millisecond}
	s.ObserveAttempt(r, a)
	if n := testing.AllocsPerRun(200, func() { s.ObserveAttempt(r, a) }); n != 0 {
		t.Fatalf("attempt recording allocates %v", n)
	}
}

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}
