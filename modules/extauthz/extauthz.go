// Package extauthz is the `extAuthz` guard: before a request goes on, it is described to an
// external authorization service in Envoy's gRPC ext_authz protocol
// (envoy.service.auth.v3.Authorization/Check), so services written for Envoy (OPA-Envoy,
// Authorino, custom ones) plug in unchanged. The CheckRequest carries the canonical request
// identity (docs/security.md); an OK answer may change the request's headers and query and
// the response's headers, a denial is sent to the client as the service wrote it, and an
// unreachable, slow or failing service denies the request with statusOnError (403) unless
// failureModeAllow is set. It sits at core.StageForwardAuth (after forwardAuth) for a site's
// `extAuthz`, and inside a proxy route for a route's `extAuthz` (docs/extauthz.md).
package extauthz

import (
	"context"
	"errors"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/envoyext"
)

func init() {
	core.Register(core.Module{
		ID:          "http.auth.extauthz",
		Feature:     "extauthz",
		Description: "external authorization over Envoy's gRPC ext_authz protocol (fail closed)",
		Stage:       core.StageForwardAuth,
		Order:       10, // after forwardAuth (Order 0) at the same stage
		Guard:       true,
		SiteKeys:    []string{"extAuthz"},
		RouteKeys:   []string{"extAuthz"},
		SiteRoles:   core.RoleMiddleware | core.RoleHeaderInjector,
		Site:        provisionSite,
		Route:       provisionRoute,
		ConfigTypes: map[string]any{"extAuthz": Config{}},
	})
}

// Guard is one provisioned extAuthz block (a site's or a route's). It is safe for concurrent
// use and built once per generation.
type Guard struct {
	client        authv3.AuthorizationClient
	target        string
	timeout       time.Duration
	failOpen      bool
	failHeader    bool
	statusOnError int
	body          *bodyOptions
	peerCert      bool
	settings      *checkSettings
	cache         *decisionCache
	skip          *skippaths.Matcher
	denied        *telemetry.Metric
	failed        *telemetry.Metric
	failAllowed   *telemetry.Metric
	log           envoyext.Warner
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware            = (*Guard)(nil)
	_ core.RequestHeaderInjector = (*Guard)(nil)
)

func provisionSite(ctx *core.SiteContext) core.SiteInstance {
	node, ok := ctx.Section("extAuthz")
	if !ok {
		return nil
	}
	g := build(ctx, node, ctx.Path("extAuthz"))
	if g == nil {
		return nil
	}
	return g
}

func provisionRoute(ctx *core.SiteContext, _ string, node any, path, _ string) core.Middleware {
	g := build(ctx, node, path)
	if g == nil {
		return nil
	}
	return g
}

// failureModeHeader is added to a request let through on failure with
// failureModeAllowHeaderAdd, as Envoy names it.
const failureModeHeader = "X-Envoy-Auth-Failure-Mode-Allowed"

// InjectedRequestHeaders implements core.RequestHeaderInjector: the failure-mode header,
// when this block adds it. (The headers a service sets are known only per request; their
// request trailers are dropped then, see envoyext.GuardTrailers.)
func (g *Guard) InjectedRequestHeaders() []string {
	if g.failHeader {
		return []string{failureModeHeader}
	}
	return nil
}

// Wrap implements core.Middleware.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.failHeader {
			delete(r.Header, failureModeHeader)
		}
		if g.skip.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		g.serve(w, r, next)
	})
}

// serve asks the authorization service about r and acts on the answer.
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	var body []byte
	partial := false
	if g.body != nil {
		var status int
		body, partial, status = g.body.read(r)
		if status != 0 {
			core.Error(w, r, status, "")
			return
		}
	}
	req := g.checkRequest(r, body, partial)
	resp, err := g.decide(r, req)
	if err != nil {
		g.fail(w, r, next, err, nil)
		return
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		g.allow(w, r, next, resp.GetOkResponse())
		return
	}
	if e := resp.GetErrorResponse(); e != nil {
		g.fail(w, r, next, errors.New("the service answered with an error_response"), e)
		return
	}
	g.deny(w, r, resp.GetDeniedResponse())
}

// decide answers req from the decision cache, or asks the service (and keeps its decision
// when the cache is on).
func (g *Guard) decide(r *http.Request, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if g.cache == nil {
		return g.call(r, req)
	}
	key, ok := cacheKey(req)
	if ok {
		if resp := g.cache.get(key, time.Now()); resp != nil {
			return resp, nil
		}
	}
	resp, err := g.call(r, req)
	if err == nil && ok {
		g.cache.put(key, resp, time.Now())
	}
	return resp, err
}

// call sends the CheckRequest under the per-request deadline (timeoutMs, and the request's
// own deadline when limits set one).
func (g *Guard) call(r *http.Request, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	var parent context.Context = r.Context()
	deadline := time.Now().Add(g.timeout)
	if st := core.State(r); st != nil {
		parent = st.Base()
		if !st.RequestDeadline.IsZero() && st.RequestDeadline.Before(deadline) {
			deadline = st.RequestDeadline
		}
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	return g.client.Check(ctx, req)
}

// allow applies an OK answer's mutations and lets the request through. A mutation that
// cannot be applied (a header name or value that cannot be sent) is a failure of the
// service, handled as failureModeAllow says.
func (g *Guard) allow(w http.ResponseWriter, r *http.Request, next http.Handler, ok *authv3.OkHttpResponse) {
	if ok != nil {
		m, err := parseOK(ok)
		if err != nil {
			g.fail(w, r, next, err, nil)
			return
		}
		m.applyRequest(r)
		if len(m.response) > 0 {
			core.OnHeader(r, envoyext.ResponseHeaders(m.response))
		}
	}
	next.ServeHTTP(w, r)
}

// deny answers the client with the service's denial (403 when it names no status).
func (g *Guard) deny(w http.ResponseWriter, r *http.Request, d *authv3.DeniedHttpResponse) {
	if g.denied != nil {
		g.denied.Inc()
	}
	if d == nil {
		core.Deny(w, r, http.StatusForbidden)
		return
	}
	muts, err := envoyext.ParseMutations(d.GetHeaders(), envoyext.Client)
	if err != nil {
		g.log.Warn("the service's denial is malformed; denying with 403", err)
		core.Deny(w, r, http.StatusForbidden)
		return
	}
	envoyext.WriteLocal(w, r, envoyext.ReplyStatus(int32(d.GetStatus().GetCode()), http.StatusForbidden), muts, d.GetBody())
}

// fail handles a service that could not decide: an RPC error, a timeout, an error_response
// (e, which may carry the reply to send) or an answer that cannot be applied. It denies
// with statusOnError unless failureModeAllow is set.
func (g *Guard) fail(w http.ResponseWriter, r *http.Request, next http.Handler, err error, e *authv3.DeniedHttpResponse) {
	if g.failOpen {
		if g.failAllowed != nil {
			g.failAllowed.Inc()
		}
		g.log.Warn("authorization service failed; letting the request through (failureModeAllow)", err)
		if g.failHeader {
			r.Header[failureModeHeader] = []string{"true"}
		}
		next.ServeHTTP(w, r)
		return
	}
	if g.failed != nil {
		g.failed.Inc()
	}
	g.log.Warn("authorization service failed; denying (fail closed)", err)
	if e != nil {
		if muts, perr := envoyext.ParseMutations(e.GetHeaders(), envoyext.Client); perr == nil {
			envoyext.WriteLocal(w, r, envoyext.ReplyStatus(int32(e.GetStatus().GetCode()), g.statusOnError), muts, e.GetBody())
			return
		}
	}
	core.Deny(w, r, g.statusOnError)
}

// Metrics of the guard, registered at provision time.
func metrics(ctx *core.SiteContext) (denied, failed, allowed *telemetry.Metric) {
	if ctx.Global == nil || ctx.Global.Metrics == nil {
		return nil, nil, nil
	}
	reg := ctx.Global.Metrics
	// The family the other auth modules count their denials in (modules/auth/internal/authutil).
	denied = reg.Counter("conduit_auth_denied_total", "Requests denied by an authentication module.", "site", "module").
		With(ctx.Site.Label, "extAuthz")
	f := reg.Counter("conduit_extauthz_failures_total",
		"extAuthz checks that failed (error, timeout, unusable answer), by what was done with the request.", "site", "outcome")
	return denied, f.With(ctx.Site.Label, "denied"), f.With(ctx.Site.Label, "allowed")
}
