// Package admin is the Admin API: a small JSON API on its own loopback listener
// (global.admin.bind) for reloads, status, shutdown, certificate rotation and the endpoints
// modules contribute (upstreams, cache purge, rate limits, the IP deny list).
//
// Every endpoint requires `Authorization: Bearer <global.admin.token>` when a token is
// configured; the token is read from the current generation on every request, so a reload
// rotates it, and compared in constant time. Failures get 401 with an empty body.
//
// Before the token, every request must name this API in Host and (if present) Origin, and a
// request that changes state may not come from another site and must send its body as
// application/json (guard.go); these answer 403 and 415. They apply with and without a
// token, so a browser page cannot drive the API through DNS rebinding or a cross-site form.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/admin/dashboard"
	"github.com/conduitproxy/conduit/core/server"
)

// Options configure the Admin API.
type Options struct {
	// Server is the running server.
	Server *server.Server
	// Shutdown starts a graceful shutdown of the process.
	Shutdown func()
	// Logger receives the API's logs, including one line per request (the access log).
	Logger *slog.Logger
	// Version is the binary's version, shown by the dashboard and GET /status.
	Version string
	// Listen opens the API's listener on bind; nil means net.Listen. A binary upgrade
	// (core/handoff) adopts the listener it was handed there.
	Listen func(network, bind string) (net.Listener, error)
	// Upgrade starts a binary upgrade (POST /upgrade; upgrade.go); nil answers 409.
	Upgrade func(ctx context.Context) (*UpgradeResult, error)
}

// API is a running Admin API.
type API struct {
	opts Options
	ln   net.Listener
	srv  *http.Server
	core map[string]http.Handler
	// origin is the set of addresses a request must name (see guard.go).
	origin origin
	// dash is the web dashboard under /dashboard/ (core/admin/dashboard).
	dash *dashboard.Dashboard
}

// Start listens on bind and serves the API until Close.
func Start(bind string, opts Options) (*API, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	listen := opts.Listen
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("admin API: listen on %s: %w", bind, err)
	}
	a := &API{opts: opts, ln: ln, origin: newOrigin(bind, ln.Addr())}
	a.core = map[string]http.Handler{
		"GET /status":        http.HandlerFunc(a.status),
		"POST /reload":       http.HandlerFunc(a.reload),
		"POST /shutdown":     http.HandlerFunc(a.shutdown),
		"POST /certs/reload": http.HandlerFunc(a.certsReload),
		"POST /upgrade":      http.HandlerFunc(a.upgrade),
	}
	a.dash = dashboard.New(dashboard.Options{
		Token:    func() (string, bool) { return generationToken(a.opts.Server.Current()) },
		API:      http.HandlerFunc(a.serveAuthorized),
		Overview: a.overview,
	})
	a.srv = &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("admin API stopped", "err", err)
		}
	}()
	opts.Logger.Info("admin API listening", "addr", ln.Addr().String())
	return a, nil
}

// Addr returns the bound address.
func (a *API) Addr() net.Addr { return a.ln.Addr() }

// Close stops the API, letting requests in flight finish within ctx.
func (a *API) Close(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// ServeHTTP logs every request (accesslog.go), refuses requests a browser page elsewhere
// could make (see origin), then authenticates and dispatches. The dashboard's paths go to
// the dashboard, which authenticates them itself (bearer token or its session cookie).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lw := a.logRequest(w, r)
	defer lw.done()
	w = lw
	if ref := a.origin.check(r); ref != nil {
		ref.write(w)
		return
	}
	g := a.opts.Server.Current()
	if g == nil {
		core.AdminError(w, http.StatusServiceUnavailable, "starting")
		return
	}
	if dashboard.Owns(r.URL.Path) {
		a.dash.ServeHTTP(w, r)
		return
	}
	if !authorized(g, r) {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a.serveAuthorized(w, r)
}

// serveAuthorized checks the body of an authenticated request and dispatches it.
func (a *API) serveAuthorized(w http.ResponseWriter, r *http.Request) {
	g := a.opts.Server.Current()
	if ref := checkBody(r); ref != nil {
		ref.write(w)
		return
	}
	key := r.Method + " " + r.URL.Path
	if h, ok := a.core[key]; ok {
		h.ServeHTTP(w, r)
		return
	}
	if h := moduleHandler(g, r.Method, r.URL.Path); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	// Endpoints that modules register (core.Module.AdminPaths, in the generated catalog) but
	// no instance serves: 409 with the module's reason when the feature is compiled in and the
	// configuration does not use it, 501 naming the feature when it is not compiled in.
	if e, ok := core.LookupAdminPath(key); ok {
		if m, ok := core.ModuleForAdminPath(key); ok {
			unused := m.AdminUnused
			if unused == "" {
				unused = fmt.Sprintf("feature %q is not used", e.Feature)
			}
			core.AdminJSON(w, http.StatusConflict, map[string]any{"status": "error",
				"message": fmt.Sprintf("%s %s: %s in the running configuration", r.Method, r.URL.Path, unused)})
			return
		}
		core.AdminJSON(w, http.StatusNotImplemented, map[string]any{"status": "error",
			"message": fmt.Sprintf("%s %s needs feature %q, which is not compiled into this binary", r.Method, r.URL.Path, e.Feature)})
		return
	}
	if a.pathExists(g, r.URL.Path) {
		core.AdminError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	core.AdminError(w, http.StatusNotFound, "no such endpoint")
}

func (a *API) pathExists(g *server.Generation, path string) bool {
	for k := range a.core {
		if strings.HasSuffix(k, " "+path) {
			return true
		}
	}
	for _, k := range core.CatalogAdminPaths() {
		if strings.HasSuffix(k, " "+path) {
			return true
		}
	}
	return false
}

// moduleHandler finds a module endpoint in the generation (first provider wins).
func moduleHandler(g *server.Generation, method, path string) http.Handler {
	for _, inst := range g.Instances() {
		p, ok := inst.(core.AdminProvider)
		if !ok {
			continue
		}
		for _, e := range p.AdminEndpoints() {
			if e.Method == method && e.Path == path {
				return e.Handler
			}
		}
	}
	return nil
}

// authorized checks the bearer token of the current generation in constant time.
func authorized(g *server.Generation, r *http.Request) bool {
	adm := g.Global.Admin
	if adm == nil || adm.Token == nil {
		return true
	}
	want := adm.Token.Reveal()
	got := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(got, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		// Compare anyway so the time taken does not depend on the header's shape.
		subtle.ConstantTimeCompare([]byte(want), []byte(want))
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(want)) == 1
}
