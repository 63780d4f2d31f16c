package otlp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func TestResolve(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	s := func(v string) *string { return &v }
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name     string
		cfg      Config
		protocol Protocol
		url      string
		insecure bool
		errPath  string
	}{
		{"grpc http", Config{Endpoint: "http://otel:4317"}, ProtocolGRPC, "http://otel:4317", true, ""},
		{"grpc https default port", Config{Endpoint: "https://otel"}, ProtocolGRPC, "https://otel:4317", false, ""},
		{"bare host:port", Config{Endpoint: "otel:4317"}, ProtocolGRPC, "http://otel:4317", true, ""},
		{"http by port", Config{Endpoint: "http://otel:4318"}, ProtocolHTTP, "http://otel:4318/v1/traces", true, ""},
		{"http by path", Config{Endpoint: "https://otel.example/v1/traces"}, ProtocolHTTP, "https://otel.example:4318/v1/traces", false, ""},
		{"explicit http", Config{Endpoint: "http://otel:9999", Protocol: s("http/protobuf")}, ProtocolHTTP, "http://otel:9999/v1/traces", true, ""},
		{"explicit grpc on 4318", Config{Endpoint: "http://otel:4318", Protocol: s("grpc")}, ProtocolGRPC, "http://otel:4318", true, ""},
		{"bad protocol", Config{Endpoint: "http://otel:4317", Protocol: s("thrift")}, "", "", false, "global.otlp.protocol"},
		{"grpc with path", Config{Endpoint: "http://otel:4317/x", Protocol: s("grpc")}, "", "", false, "global.otlp.endpoint"},
		{"bad scheme", Config{Endpoint: "udp://otel:4317"}, "", "", false, "global.otlp.endpoint"},
		{"no port bare", Config{Endpoint: "otel"}, "", "", false, "global.otlp.endpoint"},
		{"empty", Config{Endpoint: "", present: true}, "", "", false, "global.otlp.endpoint"},
		{"sample rate high", Config{Endpoint: "otel:4317", SampleRate: f(1.5)}, "", "", false, "global.otlp.sampleRate"},
		{"sample rate negative", Config{Endpoint: "otel:4317", SampleRate: f(-0.1)}, "", "", false, "global.otlp.sampleRate"},
		{"timeout zero", Config{Endpoint: "otel:4317", TimeoutMs: u(0)}, "", "", false, "global.otlp.timeoutMs"},
		{"empty service", Config{Endpoint: "otel:4317", ServiceName: s(" ")}, "", "", false, "global.otlp.serviceName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &config.Diagnostics{}
			got := tt.cfg.resolve("global.otlp", d)
			if tt.errPath != "" {
				if e := d.Errors(); len(e) != 1 || e[0].Path != tt.errPath {
					t.Fatalf("errors %v; want one at %s", e, tt.errPath)
				}
				return
			}
			if d.HasErrors() {
				t.Fatal(d.Errors())
			}
			if got.protocol != tt.protocol || got.endpointURL != tt.url || got.insecure != tt.insecure {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestDecodeRequiredAndDefaults(t *testing.T) {
	var c Config
	d := &config.Diagnostics{}
	config.Decode(map[string]config.Node{"serviceName": "x"}, "global.otlp", &c, d)
	if e := d.Errors(); len(e) != 1 || e[0].Path != "global.otlp.endpoint" {
		t.Fatalf("missing endpoint: %v", e)
	}
	c = Config{}
	d = &config.Diagnostics{}
	config.Decode(map[string]config.Node{"endpoint": "http://otel:4317"}, "global.otlp", &c, d)
	s := c.resolve("global.otlp", d)
	if d.HasErrors() || s.serviceName != "conduit" || s.sampleRate != 1 || s.timeoutMs != 5000 {
		t.Fatalf("defaults %+v %v", s, d.Errors())
	}
}

func FuzzEndpoint(f *testing.F) {
	for _, s := range []string{"http://a:4317", "a:1", "https://x/v1/traces", "://", "http://[::1]:4318"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ep string) {
		d := &config.Diagnostics{}
		s := (&Config{Endpoint: ep, present: true}).resolve("o", d)
		if !d.HasErrors() && s.endpointURL == "" {
			t.Fatalf("%q accepted without a URL", ep)
		}
	})
}

// harness is a Tracing with an in-memory exporter and a site middleware around handler.
func harness(t *testing.T, rate float64, handler http.HandlerFunc) (*Tracing, *tracetest.InMemoryExporter, http.Handler) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(settings{serviceName: "conduit-test", sampleRate: rate, timeoutMs: 1000},
		func(context.Context) (sdktrace.SpanExporter, error) { return exp, nil })
	tr.syncer = true
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	st := &siteTracing{t: tr, site: &core.Site{Port: 8080}, hostAttr: attribute.Int("server.port", 8080)}
	return tr, exp, st.Wrap(handler)
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	st, r := core.AcquireState(w, r, &core.Site{Port: 8080}, time.Now())
	st.ID = "rid-1"
	defer core.ReleaseState(st)
	h.ServeHTTP(&st.Writer, r)
	return w
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestServerAndClientSpans(t *testing.T) {
	var tr *Tracing
	var seen string
	var exp *tracetest.InMemoryExporter
	var h http.Handler
	tr, exp, h = harness(t, 1, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("traceparent")
		st := core.State(r)
		st.Route, st.Upstream = "/api", "http://up:1"
		t0 := time.Now().Add(-10 * time.Millisecond)
		tr.ObserveAttempt(r, &core.UpstreamAttempt{Route: "/api", Upstream: "http://up:1", Err: errors.New("refused"), Start: t0, Duration: time.Millisecond})
		tr.ObserveAttempt(r, &core.UpstreamAttempt{Route: "/api", Upstream: "http://up:1", Status: 502, Start: t0.Add(2 * time.Millisecond), Duration: 3 * time.Millisecond, Retry: true})
		w.WriteHeader(http.StatusBadGateway)
	})
	r := httptest.NewRequest("GET", "/api/x?q=1&access_token=very-secret", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	r.Header.Set("tracestate", "vendor=1")
	serve(h, r)

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	server := spans[2]
	if server.SpanKind != trace.SpanKindServer || server.Name != "GET /api" {
		t.Fatalf("server span %s %v", server.Name, server.SpanKind)
	}
	if server.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || server.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("server span does not continue the client's trace: %v parent %v", server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	if server.Status.Code != codes.Error {
		t.Errorf("502 server span status %v", server.Status)
	}
	a := attrs(server)
	for k, want := range map[attribute.Key]any{
		"method": "GET", "path": "/api/x", "status": int64(502), "request_id": "rid-1", "upstream_url": "http://up:1",
		"http.request.method": "GET", "http.response.status_code": int64(502), "http.route": "/api", "url.path": "/api/x",
		"url.query": "q=1&access_token=REDACTED",
	} {
		if got := a[k].AsInterface(); got != want {
			t.Errorf("server %s = %v; want %v", k, got, want)
		}
	}
	if _, ok := a["duration_ms"]; !ok {
		t.Errorf("no duration_ms")
	}
	wantTP := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + server.SpanContext.SpanID().String() + "-01"
	if seen != wantTP {
		t.Errorf("upstream traceparent %q; want %q", seen, wantTP)
	}
	if server.SpanContext.TraceState().String() != "vendor=1" {
		t.Errorf("tracestate %q", server.SpanContext.TraceState())
	}
	for i, c := range spans[:2] {
		if c.SpanKind != trace.SpanKindClient || c.Parent.SpanID() != server.SpanContext.SpanID() || c.SpanContext.TraceID() != server.SpanContext.TraceID() {
			t.Errorf("client span %d: kind %v parent %v", i, c.SpanKind, c.Parent.SpanID())
		}
		if c.Status.Code != codes.Error {
			t.Errorf("client span %d status %v", i, c.Status)
		}
		if c.EndTime.Sub(c.StartTime) <= 0 {
			t.Errorf("client span %d has no duration", i)
		}
	}
	if attrs(spans[0])["error.type"].AsString() != "connection_error" || attrs(spans[1])["http.response.status_code"].AsInt64() != 502 || !attrs(spans[1])["retry"].AsBool() {
		t.Errorf("client attributes %v / %v", spans[0].Attributes, spans[1].Attributes)
	}
	if spans[1].StartTime.Before(spans[0].EndTime) {
		t.Errorf("attempt timestamps not kept")
	}
}

func TestSampling(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rate  float64
		tp    string
		spans int
		flag  string
	}{
		{"rate 0 starts nothing", 0, "", 0, "00"},
		{"rate 1 samples", 1, "", 1, "01"},
		{"sampled parent wins over rate 0", 0, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1, "01"},
		{"unsampled parent wins over rate 1", 1, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 0, "00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			_, exp, h := harness(t, tt.rate, func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Get("traceparent") })
			r := httptest.NewRequest("GET", "/", nil)
			if tt.tp != "" {
				r.Header.Set("traceparent", tt.tp)
			}
			serve(h, r)
			if n := len(exp.GetSpans()); n != tt.spans {
				t.Errorf("%d spans; want %d", n, tt.spans)
			}
			if len(seen) != 55 || seen[53:] != tt.flag {
				t.Errorf("propagated traceparent %q; want flags %s", seen, tt.flag)
			}
		})
	}
}

func TestNoSiteStageWithoutGlobalOTLP(t *testing.T) {
	d := &config.Diagnostics{}
	g := core.NewGlobalContext(context.Background(), map[string]config.Node{}, d, nil, nil)
	ctx := core.NewSiteContext(context.Background(), &core.Site{}, nil, g, nil)
	if inst := provisionSite(ctx); inst != nil {
		t.Fatal("site stage without global.otlp")
	}
	g2 := core.NewGlobalContext(context.Background(), map[string]config.Node{"otlp": map[string]config.Node{"endpoint": "http://127.0.0.1:1"}}, d, g.Shared, nil)
	if inst := provisionGlobal(g2); inst == nil || d.HasErrors() {
		t.Fatalf("global: %v %v", inst, d.Errors())
	}
	if len(g2.AttemptObservers()) != 1 {
		t.Fatal("attempt observer not registered")
	}
	if inst := provisionSite(core.NewSiteContext(context.Background(), &core.Site{}, nil, g2, nil)); inst == nil {
		t.Fatal("no site stage with global.otlp")
	}
	// The next generation without global.otlp must not reuse the old tracer.
	g3 := core.NewGlobalContext(context.Background(), nil, d, g.Shared, nil)
	if inst := provisionSite(core.NewSiteContext(context.Background(), &core.Site{}, nil, g3, nil)); inst != nil {
		t.Fatal("stale tracer reused after a reload removed global.otlp")
	}
}
