// Package dashboard is the Admin API's web dashboard: a page embedded in the binary, served
// under /dashboard/ on the Admin API listener, that shows the running configuration, live
// traffic (GET /top), the tap stream (GET /tap) and upstream health, and runs a few actions
// (reload, upstream drain and weight, cache purge) through the Admin API's own endpoints.
//
// The Admin API (core/admin) hands it every request under Prefix after its Host, Origin and
// Sec-Fetch-Site checks. With global.admin.token set, every path under Prefix needs the
// token: as `Authorization: Bearer`, or as the session cookie that POST /dashboard/login
// issues after checking the token (HttpOnly, SameSite=Strict, Secure over TLS; the token
// itself never appears in a URL). Without a session, GET /dashboard/ answers 401 with the
// login form and every other path 401 with an empty body. Every answer carries a strict
// Content-Security-Policy (scripts and styles from the binary only). See docs/dashboard.md.
package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// Prefix is the path every dashboard URL starts with.
const Prefix = "/dashboard/"

//go:embed static
var static embed.FS

// Options wire the dashboard to the Admin API.
type Options struct {
	// Token returns the current generation's Admin API token; ok is false when none is
	// configured (the dashboard is then as open as the API).
	Token func() (token string, ok bool)
	// API serves an authenticated request for an Admin API endpoint; r.URL.Path is the
	// endpoint's path ("/upstreams"). The Admin API's body check runs in it.
	API http.Handler
	// Overview returns the document GET /dashboard/api/overview answers (JSON).
	Overview func() any
}

// Dashboard serves the pages and the session.
type Dashboard struct {
	opts     Options
	sessions *sessions
	logins   *loginLimiter
	login    []byte // the login page
	loginCSP string
}

// New returns the dashboard.
func New(opts Options) *Dashboard {
	d := &Dashboard{opts: opts, sessions: newSessions(), logins: &loginLimiter{}}
	d.login, d.loginCSP = loginPage()
	return d
}

// Owns reports whether path is the dashboard's.
func Owns(path string) bool { return strings.HasPrefix(path, Prefix) }

// Security headers of every dashboard answer. The app's CSP allows scripts, styles and
// connections to this origin only; no inline code, no frames, no form posts.
const appCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// apiAllowed lists the Admin API endpoints the page may call through /dashboard/api/:
// what it shows and the actions it offers, nothing else (no shutdown, no certificates).
var apiAllowed = []string{
	"GET /status", "GET /upstreams", "GET /tap", "GET /top",
	"POST /reload", "POST /upstreams/weight", "POST /upstreams/drain", "POST /upstreams/undrain",
	"DELETE /cache/purge",
}

// ServeHTTP implements http.Handler for every path under Prefix.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header(), appCSP)
	rest := strings.TrimPrefix(r.URL.Path, Prefix)
	if rest == "login" {
		d.serveLogin(w, r)
		return
	}
	via, ok := d.authenticate(r)
	if !ok {
		if rest == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			setSecurityHeaders(w.Header(), d.loginCSP)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(d.login)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	// A state-changing request that a cookie authenticates must name its origin: browsers
	// send Origin on every fetch that is not GET or HEAD, and the Admin API has already
	// refused any Origin but its own.
	if via == viaCookie && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("Origin") == "" {
		core.AdminError(w, http.StatusForbidden, "a dashboard action must come from the dashboard page (no Origin)")
		return
	}
	switch {
	case rest == "logout":
		d.serveLogout(w, r)
	case rest == "api/overview":
		if r.Method != http.MethodGet {
			core.AdminError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		core.AdminJSON(w, http.StatusOK, d.opts.Overview())
	case strings.HasPrefix(rest, "api/"):
		endpoint := "/" + strings.TrimPrefix(rest, "api/")
		if !slices.Contains(apiAllowed, r.Method+" "+endpoint) {
			core.AdminError(w, http.StatusNotFound, "the dashboard does not offer "+r.Method+" "+endpoint)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = endpoint, ""
		r2.Header.Del("Cookie")
		d.opts.API.ServeHTTP(w, r2)
	default:
		d.serveStatic(w, r, rest)
	}
}

// serveStatic answers GET for the page and its files.
func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		core.AdminError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	name := rest
	if name == "" {
		name = "index.html"
	}
	if strings.Contains(name, "/") || name == "login.html" {
		core.AdminError(w, http.StatusNotFound, "not found")
		return
	}
	body, err := static.ReadFile("static/" + name)
	if err != nil {
		core.AdminError(w, http.StatusNotFound, "not found")
		return
	}
	ct := mime.TypeByExtension(name[strings.LastIndexByte(name, '.'):])
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// loginPage returns the login form with its script and style inlined, and the CSP that
// allows exactly those (by hash).
func loginPage() ([]byte, string) {
	page, _ := static.ReadFile("static/login.html")
	js, _ := static.ReadFile("static/login.js")
	css, _ := static.ReadFile("static/login.css")
	hash := func(b []byte) string {
		s := sha256.Sum256(b)
		return "'sha256-" + base64.StdEncoding.EncodeToString(s[:]) + "'"
	}
	out := strings.Replace(string(page), "<!--style-->", "<style>"+string(css)+"</style>", 1)
	out = strings.Replace(out, "<!--script-->", "<script>"+string(js)+"</script>", 1)
	csp := "default-src 'none'; script-src " + hash(js) + "; style-src " + hash(css) +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return []byte(out), csp
}

// maxLoginBody bounds POST /dashboard/login's body.
const maxLoginBody = 4 << 10

// serveLogin is POST /dashboard/login: {"token": "..."} checked against the Admin API token
// in constant time; success sets the session cookie and answers 204.
func (d *Dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		core.AdminError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		core.AdminError(w, http.StatusUnsupportedMediaType, "a request body must be Content-Type: application/json")
		return
	}
	if !d.logins.allow(time.Now()) {
		w.Header().Set("Retry-After", "60")
		core.AdminError(w, http.StatusTooManyRequests, "too many failed logins; wait a minute")
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxLoginBody)).Decode(&body); err != nil {
		core.AdminError(w, http.StatusBadRequest, `body must be {"token": "..."}`)
		return
	}
	want, configured := d.opts.Token()
	if configured && subtle.ConstantTimeCompare([]byte(body.Token), []byte(want)) != 1 {
		d.logins.failed(time.Now())
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id, err := d.sessions.create(want, time.Now())
	if err != nil {
		core.AdminError(w, http.StatusInternalServerError, "session: "+err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionLifetime / time.Second)})
	w.WriteHeader(http.StatusNoContent)
}

// serveLogout is POST /dashboard/logout: the session ends and the cookie is cleared.
func (d *Dashboard) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		core.AdminError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if c, err := r.Cookie(CookieName); err == nil {
		d.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// How a request was authenticated.
const (
	viaOpen = iota // no token configured
	viaBearer
	viaCookie
)

// authenticate checks the bearer token or the session cookie against the current token.
func (d *Dashboard) authenticate(r *http.Request) (int, bool) {
	want, configured := d.opts.Token()
	if !configured {
		return viaOpen, true
	}
	if got := r.Header.Get("Authorization"); got != "" {
		scheme, token, ok := strings.Cut(got, " ")
		return viaBearer, ok && strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(want)) == 1
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return viaCookie, false
	}
	return viaCookie, d.sessions.valid(c.Value, want, time.Now())
}

// loginLimiter refuses logins for the rest of a minute after MaxFailedLogins failures in
// it, process-wide: the token is long, but nothing should be guessable at line rate.
type loginLimiter struct {
	mu     sync.Mutex
	minute int64
	fails  int
}

// MaxFailedLogins is the number of failed logins allowed per minute.
const MaxFailedLogins = 20

func (l *loginLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := now.Unix() / 60; m != l.minute {
		l.minute, l.fails = m, 0
	}
	return l.fails < MaxFailedLogins
}

func (l *loginLimiter) failed(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := now.Unix() / 60; m != l.minute {
		l.minute, l.fails = m, 0
	}
	l.fails++
}

// AllowedEndpoints lists the Admin API endpoints ("METHOD /path") the page may call through
// /dashboard/api/.
func AllowedEndpoints() []string { return slices.Clone(apiAllowed) }
