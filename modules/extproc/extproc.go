// Package extproc is the `extProc` stage: each request of the site is processed by an
// external service speaking Envoy's ext_proc protocol
// (envoy.service.ext_proc.v3.ExternalProcessor/Process) over one bidirectional gRPC stream
// per request. The service sees the request headers before the request goes on and the
// response headers before they are sent (each phase can be skipped); it can change either
// set of headers or answer in Conduit's place with an immediate response. Bodies are not
// sent. A service that fails, times out or answers out of turn fails the request closed (500,
// 504 for a timeout) unless failureModeAllow is set. It sits at core.StageForwardAuth after
// forwardAuth and extAuthz (docs/extproc.md).
package extproc

import (
	"context"
	"errors"
	"net/http"
	"time"

	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/envoyext"
)

func init() {
	core.Register(core.Module{
		ID:          "http.plugins.extproc",
		Feature:     "extproc",
		Description: "external processing of request and response headers over Envoy's gRPC ext_proc protocol (fail closed)",
		Stage:       core.StageForwardAuth,
		Order:       20, // after forwardAuth (0) and extAuthz (10)
		Guard:       true,
		SiteKeys:    []string{"extProc"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
		ConfigTypes: map[string]any{"extProc": Config{}},
	})
}

// Config is the site's `extProc` block.
type Config struct {
	// GRPC is the processing service: "host:port" or "dns:///host:port".
	GRPC string `json:"grpc" cfg:"required" doc:"the processing service: host:port, or dns:///host:port to balance round-robin across every address the name resolves to"`
	// TimeoutMs bounds the wait for each answer of the service; default 200, as Envoy's
	// message_timeout.
	TimeoutMs *uint64 `json:"timeoutMs" default:"200" minimum:"1" doc:"bounds each answer of the service"`
	// FailureModeAllow lets requests go on unprocessed when the service fails; default false.
	FailureModeAllow bool `json:"failureModeAllow" default:"false" doc:"lets requests through when the service fails"`
	// StatusOnError is the status of a request failed because the service failed; default
	// 500, and 504 when it did not answer in time.
	StatusOnError *uint64 `json:"statusOnError" minimum:"400" maximum:"599" doc:"the status of a request refused because the service failed; without it 500, or 504 for a timeout"`
	// ProcessingMode says which header phases are sent.
	ProcessingMode *ModeConfig `json:"processingMode" doc:"which header phases are sent to the service"`
	// SkipPaths are paths not processed (core/skippaths).
	SkipPaths []string `json:"skipPaths" doc:"exempt paths: exact paths and /** prefixes"`
	// TLS configures TLS (and mTLS) to the service; plaintext without it.
	TLS *envoyext.TLSConfig `json:"tls" doc:"TLS (and mTLS) to the service; plaintext without it"`
}

// ModeConfig is `processingMode`: SEND or SKIP for each header phase (Envoy's
// ProcessingMode.request_header_mode and response_header_mode).
type ModeConfig struct {
	// RequestHeaderMode is "send" (default) or "skip".
	RequestHeaderMode string `json:"requestHeaderMode" enum:"|send|SEND|default|DEFAULT|skip|SKIP" default:"\"send\"" doc:"send the request headers to the service, or skip them"`
	// ResponseHeaderMode is "send" (default) or "skip".
	ResponseHeaderMode string `json:"responseHeaderMode" enum:"|send|SEND|default|DEFAULT|skip|SKIP" default:"\"send\"" doc:"send the response headers to the service, or skip them"`
}

// DefaultTimeout is Envoy's default ext_proc message timeout.
const DefaultTimeout = 200 * time.Millisecond

// Processor is the provisioned extProc stage of one site.
type Processor struct {
	client        procv3.ExternalProcessorClient
	target        string
	timeout       time.Duration
	failOpen      bool
	statusOnError int // 0: 500, or 504 for a timeout
	sendRequest   bool
	sendResponse  bool
	skip          *skippaths.Matcher
	failed        *telemetry.Metric
	failAllowed   *telemetry.Metric
	log           envoyext.Warner
}

// The roles this module's instances play, checked at compile time.
var _ core.Middleware = (*Processor)(nil)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("extProc", &c) {
		return nil
	}
	path := ctx.Path("extProc")
	before := len(ctx.Diag.Errors())
	p := &Processor{target: c.GRPC, timeout: DefaultTimeout, failOpen: c.FailureModeAllow,
		sendRequest: true, sendResponse: true,
		log: envoyext.Warner{Log: ctx.Logger, Prefix: "extProc: ", Target: c.GRPC}}
	if c.GRPC != "" {
		envoyext.ValidateTarget(ctx, c.GRPC, config.Join(path, "grpc"), "extProc")
	}
	if c.TimeoutMs != nil {
		if *c.TimeoutMs == 0 {
			ctx.Errorf(config.Join(path, "timeoutMs"), "must be ≥ 1")
		}
		p.timeout = time.Duration(min(*c.TimeoutMs, 3600_000)) * time.Millisecond
	}
	if c.StatusOnError != nil {
		if *c.StatusOnError < 400 || *c.StatusOnError > 599 {
			ctx.Errorf(config.Join(path, "statusOnError"), "must be an error status between 400 and 599, got %d", *c.StatusOnError)
		}
		p.statusOnError = int(min(*c.StatusOnError, 599))
	}
	if m := c.ProcessingMode; m != nil {
		p.sendRequest = mode(ctx, m.RequestHeaderMode, config.Join(path, "processingMode.requestHeaderMode"))
		p.sendResponse = mode(ctx, m.ResponseHeaderMode, config.Join(path, "processingMode.responseHeaderMode"))
		if !p.sendRequest && !p.sendResponse {
			ctx.Warnf(config.Join(path, "processingMode"), "both header phases are skipped: the service is never asked")
		}
	}
	p.skip = skippaths.New(c.SkipPaths, config.Join(path, "skipPaths"), ctx.Diag)
	if len(ctx.Diag.Errors()) > before {
		return nil
	}
	cc, err := envoyext.Conn(ctx, c.GRPC, c.TLS, config.Join(path, "tls"))
	if err != nil {
		return nil
	}
	p.client = procv3.NewExternalProcessorClient(cc)
	if ctx.Global != nil && ctx.Global.Metrics != nil {
		f := ctx.Global.Metrics.Counter("conduit_extproc_failures_total",
			"extProc streams that failed (error, timeout, out-of-turn answer), by what was done with the request.", "site", "outcome")
		p.failed, p.failAllowed = f.With(ctx.Site.Label, "failed"), f.With(ctx.Site.Label, "allowed")
	}
	return p
}

// mode reads one header mode: "send" (or empty) and "skip", case-insensitive as Envoy's
// enum names are written upper-case.
func mode(ctx *core.SiteContext, v, path string) bool {
	switch v {
	case "", "send", "SEND", "default", "DEFAULT":
		return true
	case "skip", "SKIP":
		return false
	}
	ctx.Errorf(path, "must be send or skip, got %q", v)
	return true
}

// errTimeout is a service that did not answer within timeoutMs.
var errTimeout = errors.New("the processing service did not answer in time")

// Wrap implements core.Middleware.
func (p *Processor) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.skip.Match(r.URL.Path) || (!p.sendRequest && !p.sendResponse) {
			next.ServeHTTP(w, r)
			return
		}
		p.serve(w, r, next)
	})
}

// serve runs one request through the service: one stream, the request headers phase, the
// rest of the pipeline, the response headers phase.
func (p *Processor) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	var parent context.Context = r.Context()
	if st := core.State(r); st != nil {
		parent = st.Base()
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s := &stream{p: p, cancel: cancel}
	var err error
	s.cl, err = p.client.Process(ctx)
	if err != nil {
		p.fail(w, r, next, err)
		return
	}
	defer func() { _ = s.cl.CloseSend() }()
	if p.sendRequest {
		done, err := s.requestHeaders(w, r)
		if err != nil {
			p.fail(w, r, next, err)
			return
		}
		if done {
			return
		}
	}
	if !p.sendResponse {
		next.ServeHTTP(w, r)
		return
	}
	keep := make(map[string]bool, len(w.Header()))
	for k := range w.Header() {
		keep[k] = true
	}
	rw := &responseWriter{ResponseWriter: w, s: s, r: r, keep: keep}
	next.ServeHTTP(rw, r)
	if rw.state == pending {
		rw.WriteHeader(http.StatusOK)
	}
}

// fail handles a service that failed before the request went on: the request goes on
// unprocessed with failureModeAllow, else it is answered with the error status.
func (p *Processor) fail(w http.ResponseWriter, r *http.Request, next http.Handler, err error) {
	if p.failOpen {
		p.count(p.failAllowed)
		p.log.Warn("processing service failed; going on unprocessed (failureModeAllow)", err)
		next.ServeHTTP(w, r)
		return
	}
	p.count(p.failed)
	p.log.Warn("processing service failed; answering with an error (fail closed)", err)
	core.Error(w, r, p.errorStatus(err), "")
}

// errorStatus is statusOnError, or Envoy's 504 for a timeout and 500 otherwise.
func (p *Processor) errorStatus(err error) int {
	if p.statusOnError != 0 {
		return p.statusOnError
	}
	if errors.Is(err, errTimeout) {
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func (p *Processor) count(m *telemetry.Metric) {
	if m != nil {
		m.Inc()
	}
}
