// Package otlp exports traces over OTLP (gRPC or HTTP/protobuf) when `global.otlp` is set:
// one server span per request and one client span per upstream attempt, with the W3C
// `traceparent`/`tracestate` headers propagated to upstreams and head sampling by
// `sampleRate` (a sampled or unsampled parent from the client is followed).
//
// The server span starts at core.StageObserve, outside every other stage, and its context is
// injected into the request headers there, before the proxy copies them, so the upstream's
// spans are children of the server span. Client spans are built after each attempt from
// core.UpstreamAttempt with the attempt's own start time and duration.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ID:          "telemetry.otlp",
		Feature:     "otlp",
		Description: "OpenTelemetry traces over OTLP (gRPC, HTTP/protobuf)",
		Stage:       core.StageObserve,
		Order:       10, // outermost: the span covers every other stage
		GlobalKeys:  []string{"otlp"},
		AlwaysOn:    true,
		GlobalRoles: core.RoleAttemptObserver | core.RoleStarter | core.RoleStopper,
		Global:      provisionGlobal,
		SiteRoles:   core.RoleMiddleware,
		Site:        provisionSite,
		ConfigTypes: map[string]any{"otlp": Config{}},
	})
}

const currentKey = "telemetry.otlp/current"

// current remembers which generation's tracer the sites of that generation use. It lives in
// core.Shared; the generation pointer tells a stale entry (a reload that removed
// global.otlp) from the current one.
type current struct {
	mu  sync.Mutex
	gen *core.GlobalContext
	t   *Tracing
}

// newCurrent builds the empty entry.
func newCurrent() *current { return &current{} }

func (c *current) set(g *core.GlobalContext, t *Tracing) {
	c.mu.Lock()
	c.gen, c.t = g, t
	c.mu.Unlock()
}

func (c *current) get(g *core.GlobalContext) *Tracing {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != g {
		return nil
	}
	return c.t
}

// Tracing is the generation's tracer: a provider whose exporter is created in Start (a
// build, e.g. `conduit validate`, opens no connection) and flushed in Stop.
type Tracing struct {
	cfg      settings
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	newExp   func(ctx context.Context) (sdktrace.SpanExporter, error)
	syncer   bool // test hook: export each span at once
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Starter         = (*Tracing)(nil)
	_ core.Stopper         = (*Tracing)(nil)
	_ core.AttemptObserver = (*Tracing)(nil)
	_ core.Middleware      = (*siteTracing)(nil)
)

func provisionGlobal(ctx *core.GlobalContext) core.Instance {
	var c Config
	if !ctx.Decode("otlp", &c) {
		return nil
	}
	if n, ok := ctx.Section("otlp"); ok {
		if m, ok := n.(map[string]config.Node); ok {
			_, c.present = m["endpoint"]
		}
	}
	s := c.resolve(config.Join("global", "otlp"), ctx.Diag)
	if s.endpointURL == "" {
		return nil
	}
	t := newTracing(s, func(ctx context.Context) (sdktrace.SpanExporter, error) { return newExporter(ctx, s) })
	ctx.AddAttemptObserver(t)
	core.SharedOf(ctx.Shared, currentKey, newCurrent).set(ctx, t)
	return t
}

func newTracing(s settings, newExp func(context.Context) (sdktrace.SpanExporter, error)) *Tracing {
	t := &Tracing{cfg: s, newExp: newExp, prop: propagation.TraceContext{}}
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(s.sampleRate))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", s.serviceName))),
	)
	t.tracer = t.provider.Tracer("github.com/conduitproxy/conduit/modules/otlp")
	return t
}

// newExporter builds the OTLP exporter for s. Neither exporter connects before its first
// export.
func newExporter(ctx context.Context, s settings) (sdktrace.SpanExporter, error) {
	timeout := time.Duration(s.timeoutMs) * time.Millisecond
	switch s.protocol {
	case ProtocolHTTP:
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(s.endpointURL), otlptracehttp.WithTimeout(timeout)}
		if s.insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	default:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(s.endpointURL), otlptracegrpc.WithTimeout(timeout)}
		if s.insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
}

// Start implements core.Starter: it creates the exporter.
func (t *Tracing) Start(ctx context.Context) error {
	exp, err := t.newExp(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("otlp exporter for %s: %w", t.cfg.endpointURL, err)
	}
	if t.syncer {
		t.provider.RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp))
	} else {
		t.provider.RegisterSpanProcessor(sdktrace.NewBatchSpanProcessor(exp))
	}
	return nil
}

// Stop implements core.Stopper: it flushes the spans of the generation, waiting at most the
// export timeout (a reload or shutdown does not hang on an unreachable collector).
func (t *Tracing) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(t.cfg.timeoutMs)*time.Millisecond)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("otlp: flush spans: %w", err)
	}
	return nil
}

// siteTracing is the site middleware: the server span.
type siteTracing struct {
	t        *Tracing
	site     *core.Site
	hostAttr attribute.KeyValue
}

func provisionSite(ctx *core.SiteContext) core.SiteInstance {
	t := core.SharedOf(ctx.Shared, currentKey, newCurrent).get(ctx.Global)
	if t == nil {
		return nil // no global.otlp in this generation: not in the chain
	}
	return &siteTracing{t: t, site: ctx.Site, hostAttr: attribute.Int("server.port", ctx.Site.Port)}
}

// Wrap implements core.Middleware.
func (s *siteTracing) Wrap(next http.Handler) http.Handler {
	t := s.t
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := core.State(r)
		start := time.Now()
		if st != nil {
			start = st.Start
		}
		parent := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(parent, r.Method,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(start),
		)
		// The upstream sees this span as its parent (and the sampling decision).
		t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
		if !span.IsRecording() {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		defer s.finish(span, r, st, w)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *siteTracing) finish(span trace.Span, r *http.Request, st *core.RequestState, w http.ResponseWriter) {
	end := time.Now()
	status := 0
	var start time.Time
	attrs := make([]attribute.KeyValue, 0, 20)
	if st != nil {
		status = st.Writer.Status
		start = st.Start
		if st.Route != "" {
			span.SetName(r.Method + " " + st.Route)
			attrs = append(attrs, attribute.String("http.route", st.Route))
		}
		attrs = append(attrs, attribute.String("request_id", st.ID))
		if st.Upstream != "" {
			attrs = append(attrs, attribute.String("upstream_url", st.Upstream))
		}
		attrs = append(attrs, attribute.Int64("http.response.body.size", st.Writer.Bytes))
	} else if cw, ok := w.(*core.ResponseWriter); ok {
		status = cw.Status
	}
	if status == 0 {
		status = http.StatusOK
	}
	dur := end.Sub(start)
	if start.IsZero() {
		dur = 0
	}
	attrs = append(attrs,
		attribute.String("method", r.Method),
		attribute.String("path", r.URL.Path),
		attribute.Int("status", status),
		attribute.Float64("duration_ms", float64(dur.Microseconds())/1000),
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", s.site.Scheme()),
		attribute.Int("http.response.status_code", status),
		attribute.String("network.protocol.version", protoVersion(r)),
		s.hostAttr,
	)
	if r.URL.RawQuery != "" {
		attrs = append(attrs, attribute.String("url.query", core.RedactQuery(r.URL.RawQuery)))
	}
	if ip := core.ClientIP(r); ip.IsValid() {
		attrs = append(attrs, attribute.String("client.address", ip.String()))
	}
	if h := r.Host; h != "" {
		attrs = append(attrs, attribute.String("server.address", h))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
	}
	span.End(trace.WithTimestamp(end))
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}

// ObserveAttempt implements core.AttemptObserver: one client span per upstream attempt,
// child of the request's server span, with the attempt's own start and duration.
func (t *Tracing) ObserveAttempt(r *http.Request, a *core.UpstreamAttempt) {
	parent := trace.SpanFromContext(r.Context())
	if !parent.IsRecording() {
		return
	}
	ctx := trace.ContextWithSpan(context.Background(), parent)
	_, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(a.Start))
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("upstream_url", a.Upstream),
		attribute.String("url.full", a.Upstream),
		attribute.String("http.route", a.Route),
		attribute.Float64("duration_ms", float64(a.Duration.Microseconds())/1000),
	}
	if st := core.State(r); st != nil {
		attrs = append(attrs, attribute.String("request_id", st.ID))
	}
	if a.Retry {
		attrs = append(attrs, attribute.Bool("retry", true))
	}
	if a.Err != nil {
		attrs = append(attrs, attribute.String("error.type", "connection_error"))
		span.RecordError(a.Err, trace.WithTimestamp(a.Start.Add(a.Duration)))
		span.SetStatus(codes.Error, a.Err.Error())
	} else {
		attrs = append(attrs, attribute.Int("http.response.status_code", a.Status), attribute.Int("status", a.Status))
		if a.Status >= 500 {
			attrs = append(attrs, attribute.String("error.type", strconv.Itoa(a.Status)))
			span.SetStatus(codes.Error, http.StatusText(a.Status))
		}
	}
	span.SetAttributes(attrs...)
	span.End(trace.WithTimestamp(a.Start.Add(a.Duration)))
}
