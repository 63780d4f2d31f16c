// Package forwardauth is the `forwardAuth` guard: every request is first described to an
// external auth service in a GET sub-request (X-Forwarded-Method, -Uri, -For, -Proto, -Host
// and the listed request headers). A 2xx answer lets the request through with the listed
// response headers copied into it (client-sent copies of those names are always removed
// first, also on skipPaths); any other answer is relayed to the client as the auth service
// gave it (status, headers, body up to 64 KiB), as Traefik's forwardAuth does, so login
// redirects and 403 pages work. An unreachable or slow service fails closed with 401.
// It sits at core.StageForwardAuth.
package forwardauth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/auth/internal/authutil"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"forwardAuth": Config{}},
		ID:          "http.auth.forward",
		Feature:     "forwardauth",
		Description: "forward authentication to an external service (sub-request, fail closed)",
		Stage:       core.StageForwardAuth,
		Guard:       true,
		SiteKeys:    []string{"forwardAuth"},
		SiteRoles:   core.RoleMiddleware | core.RoleHeaderInjector | core.RoleStopper,
		Site:        provision,
	})
}

// Config is the site's `forwardAuth` block.
type Config struct {
	// URL is the auth service endpoint.
	URL string `json:"url" cfg:"required"`
	// RequestHeaders are client headers forwarded to the auth service.
	RequestHeaders []string `json:"requestHeaders"`
	// ResponseHeaders are auth-service headers copied into the upstream request on 2xx.
	ResponseHeaders []string `json:"responseHeaders"`
	// TimeoutMs bounds the sub-request; default 5000.
	TimeoutMs *uint64 `json:"timeoutMs"`
	// SkipPaths are exempt paths.
	SkipPaths []string `json:"skipPaths"`
}

// Defaults and limits.
const (
	DefaultTimeout = 5000 * time.Millisecond
	// MaxRelayBody bounds the auth service's body relayed to the client on a denial.
	MaxRelayBody = 64 << 10
	// DefaultAdminPort is guarded when global.admin.bind is not set (the documented port).
	DefaultAdminPort = core.DefaultAdminPort
)

// Guard is the provisioned forwardAuth stage.
type Guard struct {
	url       string
	client    *http.Client
	transport *http.Transport
	reqHdrs   []string
	respHdrs  []string
	skip      *skippaths.Matcher
	scheme    string
	denied    *telemetry.Metric
	log       *slog.Logger
	lastWarn  atomic.Int64
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware            = (*Guard)(nil)
	_ core.RequestHeaderInjector = (*Guard)(nil)
	_ core.Stopper               = (*Guard)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("forwardAuth", &c) {
		return nil
	}
	p := ctx.Path("forwardAuth")
	g := &Guard{url: c.URL, scheme: ctx.Site.Scheme(), denied: authutil.Denied(ctx, "forwardAuth"), log: ctx.Logger}
	ok := true
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil || u.Host == "":
			ctx.Errorf(p+".url", "must be an absolute http(s) URL, got %q", c.URL)
			ok = false
		case u.Scheme != "http" && u.Scheme != "https":
			ctx.Errorf(p+".url", "scheme must be http or https, got %q", u.Scheme)
			ok = false
		case u.User != nil:
			ctx.Errorf(p+".url", "must not carry credentials; send them with requestHeaders")
			ok = false
		default:
			if bind, hit := core.AimsAtAdmin(u, ctx.AdminBind()); hit {
				ctx.Errorf(p+".url", "points at the Admin API (%s); forwardAuth must not call the Admin API", bind)
				ok = false
			}
		}
	}
	timeout := DefaultTimeout
	if c.TimeoutMs != nil {
		if *c.TimeoutMs == 0 {
			ctx.Errorf(p+".timeoutMs", "must be ≥ 1")
			ok = false
		}
		timeout = time.Duration(min(*c.TimeoutMs, 3600_000)) * time.Millisecond
	}
	g.reqHdrs = canonicalList(ctx, c.RequestHeaders, p+".requestHeaders")
	g.respHdrs = canonicalList(ctx, c.ResponseHeaders, p+".responseHeaders")
	g.skip = skippaths.New(c.SkipPaths, p+".skipPaths", ctx.Diag)
	if !ok {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = timeout
	g.transport = tr
	g.client = &http.Client{
		Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return g
}

// Stop implements core.Stopper: it closes the idle connections to the auth service.
func (g *Guard) Stop(context.Context) error {
	if g.transport != nil {
		g.transport.CloseIdleConnections()
	}
	return nil
}

func canonicalList(ctx *core.SiteContext, names []string, path string) []string {
	out := make([]string, 0, len(names))
	for i, n := range names {
		if !core.IsToken(n) {
			ctx.Errorf(config.Index(path, i), "must be a valid header name, got %q", n)
			continue
		}
		out = append(out, textproto.CanonicalMIMEHeaderKey(n))
	}
	return out
}

// hop-by-hop headers never relayed from the auth service.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"Proxy-Connection": true,
}

// InjectedRequestHeaders implements core.RequestHeaderInjector: the auth service's
// responseHeaders copied onto approved requests.
func (g *Guard) InjectedRequestHeaders() []string { return g.respHdrs }

// Wrap implements core.Middleware.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range g.respHdrs {
			delete(r.Header, h)
		}
		if g.skip.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		resp, err := g.ask(r)
		if err != nil {
			g.warn(err)
			authutil.Deny(w, r, http.StatusUnauthorized, g.denied)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxRelayBody))
			for _, h := range g.respHdrs {
				if vv := resp.Header[h]; len(vv) > 0 {
					r.Header[h] = vv
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		if g.denied != nil {
			g.denied.Inc()
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxRelayBody))
		h := w.Header()
		for k, vv := range resp.Header {
			if !hopByHop[k] {
				h[k] = vv
			}
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

// ask sends the sub-request.
func (g *Guard) ask(r *http.Request) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, g.url, nil)
	if err != nil {
		return nil, err
	}
	for _, name := range g.reqHdrs {
		if vv := r.Header[name]; len(vv) > 0 {
			req.Header[name] = vv
		}
	}
	req.Header["X-Forwarded-Method"] = []string{r.Method}
	req.Header["X-Forwarded-Uri"] = []string{r.URL.RequestURI()}
	if ip := core.ClientIP(r); ip.IsValid() {
		req.Header["X-Forwarded-For"] = []string{ip.String()}
	}
	req.Header["X-Forwarded-Proto"] = []string{g.scheme}
	req.Header["X-Forwarded-Host"] = []string{r.Host}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{"conduit-forward-auth"}
	}
	return g.client.Do(req)
}

// warn logs an unreachable auth service at most once per 10 s.
func (g *Guard) warn(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	now := time.Now().UnixNano()
	last := g.lastWarn.Load()
	if now-last < int64(10*time.Second) || !g.lastWarn.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn("forwardAuth: auth service unreachable; denying with 401 (fail closed)", "url", config.RedactURL(g.url), "error", err)
}
