// Package ratelimit enforces `rateLimit` at its three levels: the site (core.StageRateLimit,
// before auth), a proxy route (`proxy.<prefix>.rateLimit`, `routes[].proxy.rateLimit`, after
// routing) and a consumer (the consumers module calls New, Allow and Reject).
//
// Every level is a token bucket of capacity limit+burst that refills limit/windowSecs
// tokens per second, computed with GCRA (one timestamp per key). Buckets live in memory by
// default (a sharded map with idle eviction and a hard cap of MaxBuckets), or in a shared
// store registered by another module for a URL scheme (the redis module registers redis://
// and rediss://), so several instances share one limit.
//
// A refused request gets 429 with Retry-After and the IETF draft RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset headers; see docs/rate-limiting.md.
package ratelimit

import (
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
)

func init() {
	core.Register(core.Module{
		ID:          "http.guards.ratelimit",
		Feature:     "ratelimit",
		Description: "token-bucket rate limits per IP, header or consumer (memory or shared store)",
		Stage:       core.StageRateLimit,
		Guard:       true,
		SiteKeys:    []string{"rateLimit"},
		RouteKeys:   []string{"rateLimit"},
		StoreValued: true,
		AdminPaths:  []string{"GET /rate-limits"},
		AdminUnused: "no site or route has rateLimit",
		SiteRoles:   core.RoleMiddleware,
		Site:        provisionSite,
		Route:       provisionRoute,
		ConfigTypes: map[string]any{"rateLimit": Config{}},
	})
}

// ScopeConsumer is the bucket scope of consumer-level limits: one namespace for every site,
// keyed by username (docs/rate-limiting.md, "In-memory store").
const ScopeConsumer = "consumer"

// Config is one rateLimit block (site, route or consumer level).
type Config struct {
	WindowSecs *uint64 `json:"windowSecs" cfg:"required" minimum:"1" doc:"the window in seconds"`
	Limit      *uint64 `json:"limit" cfg:"required" minimum:"1" doc:"requests allowed per window"`
	Burst      uint64  `json:"burst" doc:"extra requests allowed at once"`
	Algorithm  *string `json:"algorithm" enum:"token-bucket"`
	KeyBy      *string `json:"keyBy" doc:"ip (the default) or header:<Name>"`
	// Store is "memory" or a store URL; a Secret because Redis URLs carry passwords.
	Store        *config.Secret `json:"store" doc:"memory (the default), redis://… or rediss://…"`
	SkipPaths    []string       `json:"skipPaths"`
	DryRun       *bool          `json:"dryRun" doc:"count without refusing (site and consumer levels only)"`
	OnStoreError *string        `json:"onStoreError" enum:"memory|allow|deny" default:"\"memory\""`
	Headers      bool           `json:"headers"`
}

// What the limiter does when its shared store cannot answer.
const (
	onErrMemory = iota // fall back to this instance's in-memory bucket (the default)
	onErrAllow         // let the request through
	onErrDeny          // refuse it with 429
)

// Decision is the outcome of Allow for one request.
type Decision struct {
	// Allowed reports whether the request may go on. A dry-run limiter always allows.
	Allowed bool
	// OverLimit reports that the bucket was empty (also under dryRun, where Allowed stays
	// true).
	OverLimit bool
	// Skipped reports that the path is in skipPaths: no token was spent.
	Skipped bool
	// Limit is the configured requests per window (RateLimit-Limit).
	Limit int64
	// Remaining is the number of whole tokens left.
	Remaining int64
	// RetryAfter is how long until a token is available (refused requests).
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// Limiter is one configured rateLimit block. It is safe for concurrent use and built once
// per generation.
type Limiter struct {
	policy    Policy
	limit     int64
	keyHeader string // canonical header name; "" keys by client IP
	prefix    string // shared-store key prefix "conduit:rl:<scope>:"
	mem       *memStore
	remote    Store
	storeURL  string // redacted, for logs
	onErr     int
	dryRun    bool
	headers   bool
	skip      *skippaths.Matcher
	now       func() int64
	stats     *Stats
	logger    *slog.Logger

	rejected  *telemetry.Metric
	dryRunned *telemetry.Metric
	storeErrs *telemetry.Metric

	downUntil atomic.Int64 // shared store considered down until (ns)
	lastLog   atomic.Int64
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Limiter)(nil)
)

// storeRetry is how long a failed shared store is left alone before the next request tries
// it again; meanwhile onStoreError decides, so an unreachable Redis does not add a dial
// timeout to every request.
const storeRetry = int64(time.Second)

// logEvery bounds the limiter's own log lines (store errors, dry-run hits).
const logEvery = int64(10 * time.Second)

func provisionSite(ctx *core.SiteContext) core.SiteInstance {
	node, ok := ctx.Section("rateLimit")
	if !ok {
		return nil
	}
	l, ok := build(ctx, node, ctx.Path("rateLimit"), "site:"+ctx.Site.Label, "*", false)
	if !ok {
		return nil
	}
	return l
}

func provisionRoute(ctx *core.SiteContext, key string, node any, path, name string) core.Middleware {
	l, ok := build(ctx, node, path, "route:"+ctx.Site.Label+":"+name, name, true)
	if !ok {
		return nil
	}
	return l
}

// New builds a limiter from a rateLimit block found at path (for diagnostics) for the
// given bucket scope; consumer limits pass ScopeConsumer. Problems are recorded in ctx;
// ok is false when the block is invalid. dryRun is allowed (consumer and site levels).
func New(ctx *core.SiteContext, node config.Node, path string, scope string) (*Limiter, bool) {
	return build(ctx, node, path, scope, ownerName(ctx, path), false)
}

// ownerName names the config object a rateLimit block at path belongs to, relative to the
// site ("consumers.consumers[1]" for a consumer's limit).
func ownerName(ctx *core.SiteContext, path string) string {
	rel := path
	if p := ctx.Site.Path; p != "" {
		rel = strings.TrimPrefix(rel, p+".")
	}
	return strings.TrimSuffix(rel, ".rateLimit")
}

func build(ctx *core.SiteContext, node config.Node, path, scope, name string, route bool) (*Limiter, bool) {
	var c Config
	before := len(ctx.Diag.Errors())
	config.Decode(node, path, &c, ctx.Diag)
	if len(ctx.Diag.Errors()) > before {
		return nil, false
	}
	if c.WindowSecs != nil && *c.WindowSecs < 1 {
		ctx.Errorf(config.Join(path, "windowSecs"), "must be ≥ 1")
	}
	if c.Limit != nil && *c.Limit < 1 {
		ctx.Errorf(config.Join(path, "limit"), "must be ≥ 1")
	}
	if c.Algorithm != nil && *c.Algorithm != "token-bucket" {
		ctx.Errorf(config.Join(path, "algorithm"), "must be \"token-bucket\" (the only algorithm), got %q", *c.Algorithm)
	}
	keyHeader := ""
	if c.KeyBy != nil {
		h, err := ParseKeyBy(*c.KeyBy)
		if err != nil {
			ctx.Errorf(config.Join(path, "keyBy"), "%v", err)
		}
		keyHeader = h
	}
	if route && c.DryRun != nil {
		ctx.Errorf(config.Join(path, "dryRun"), "is not allowed on a route (only site and consumer rate limits have dryRun)")
	}
	skip := skippaths.New(c.SkipPaths, config.Join(path, "skipPaths"), ctx.Diag)
	onErr := onErrMemory
	if c.OnStoreError != nil {
		switch *c.OnStoreError {
		case "memory":
		case "allow":
			onErr = onErrAllow
		case "deny":
			onErr = onErrDeny
		default:
			ctx.Errorf(config.Join(path, "onStoreError"), "must be \"memory\", \"allow\" or \"deny\", got %q", *c.OnStoreError)
		}
	}
	if len(ctx.Diag.Errors()) > before {
		return nil, false
	}

	g := generation(ctx)
	l := &Limiter{
		policy:    NewPolicy(*c.WindowSecs, *c.Limit, c.Burst),
		limit:     int64(min(*c.Limit, 1<<62)),
		keyHeader: keyHeader,
		prefix:    "conduit:rl:" + scope + ":",
		mem:       g.memFor(scope),
		onErr:     onErr,
		dryRun:    c.DryRun != nil && *c.DryRun,
		headers:   c.Headers,
		skip:      skip,
		now:       monotonicNow(),
		logger:    ctx.Logger.With("rateLimit", path),
		rejected:  ctx.Global.Metrics.Counter("conduit_rate_limit_rejected_total", "Requests refused with 429 by a rate limit.", "site").With(ctx.Site.Label),
		dryRunned: ctx.Global.Metrics.Counter("conduit_rate_limit_dry_run_total", "Requests over a dryRun rate limit (let through).", "site").With(ctx.Site.Label),
		storeErrs: ctx.Global.Metrics.Counter("conduit_rate_limit_store_errors_total", "Rate-limit decisions made without the shared store because it failed.", "site").With(ctx.Site.Label),
	}
	l.stats = g.stats(ctx.Site.Label, name)
	if c.Store != nil && c.Store.Reveal() != "memory" {
		l.remote, l.storeURL = openStore(ctx, c.Store.Reveal(), config.Join(path, "store"))
		if l.remote == nil && len(ctx.Diag.Errors()) > before {
			return nil, false
		}
		if bs, ok := l.remote.(BatchStore); ok {
			l.remote = NewCoalescer(bs)
		}
	}
	if c.OnStoreError != nil && l.remote == nil {
		ctx.Warnf(config.Join(path, "onStoreError"), "has no effect with the in-memory store")
	}
	return l, true
}

// openStore resolves a store URL through the registered factories.
func openStore(ctx *core.SiteContext, raw, path string) (Store, string) {
	scheme, _, ok := strings.Cut(raw, "://")
	red := config.RedactURL(raw)
	if !ok || (scheme != "redis" && scheme != "rediss") {
		if f, found := lookupStore(scheme); ok && found {
			st, err := f(ctx, raw)
			if err != nil {
				ctx.Errorf(path, "%v", err)
				return nil, red
			}
			return st, red
		}
		ctx.Errorf(path, "must be \"memory\", \"redis://…\" or \"rediss://…\", got %q", red)
		return nil, red
	}
	f, found := lookupStore(scheme)
	if !found {
		ctx.Warnf(path, "store %s://… needs feature \"redis\", which is not compiled into this binary (%s); using the in-memory store", scheme, core.FeatureRemedy("redis"))
		return nil, red
	}
	st, err := f(ctx, raw)
	if err != nil {
		ctx.Errorf(path, "%v", err)
		return nil, red
	}
	return st, red
}

// ParseKeyBy parses keyBy: "ip" (the default) or "header:<name>", where name is an HTTP
// token. It returns the canonical header name, or "" for ip.
func ParseKeyBy(s string) (string, error) {
	if s == "ip" {
		return "", nil
	}
	name, ok := strings.CutPrefix(s, "header:")
	if !ok {
		return "", errKeyBy(s)
	}
	if name == "" {
		return "", errKeyBy(s)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return "", errKeyBy(s)
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name), nil
}

type keyByError string

func (e keyByError) Error() string {
	return "must be \"ip\" or \"header:<Name>\" (Name an HTTP header token), got " + strconv.Quote(string(e))
}

func errKeyBy(s string) error { return keyByError(s) }

func isTokenChar(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// monotonicNow returns a nanosecond clock that never goes backwards.
func monotonicNow() func() int64 {
	start := time.Now()
	base := start.UnixNano()
	return func() int64 { return base + int64(time.Since(start)) }
}

// Wrap implements core.Middleware: the site-level or route-level stage.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := l.Allow(r, "")
		if !d.Allowed {
			Reject(w, r, d)
			return
		}
		if l.headers && !d.Skipped {
			setHeaders(w.Header(), &d)
		}
		next.ServeHTTP(w, r)
	})
}

// Allow spends one token for r. key names the bucket (a consumer's username); "" derives it
// from keyBy: the header's value, or the client IP when keyBy is ip or the header is
// absent. A path in skipPaths spends nothing and is allowed.
func (l *Limiter) Allow(r *http.Request, key string) Decision {
	if l.skip.Match(r.URL.Path) {
		return Decision{Allowed: true, Skipped: true, Limit: l.limit}
	}
	var k bkey
	switch {
	case key != "":
		k.s = key
	case l.keyHeader != "":
		if v := r.Header[l.keyHeader]; len(v) > 0 && v[0] != "" {
			k.s = v[0]
		} else {
			k.ip = core.ClientIP(r)
		}
	default:
		k.ip = core.ClientIP(r)
	}
	now := l.now()
	var res Result
	if l.remote != nil {
		res = l.takeRemote(r, k, now)
	} else {
		var full bool
		res, full = l.mem.take(k, now, &l.policy)
		if full {
			l.logf(now, "in-memory rate-limit buckets are at the cap; refusing new clients", "cap", MaxBuckets)
		}
	}
	d := Decision{Allowed: res.Allowed, Limit: l.limit, Remaining: res.Remaining, RetryAfter: res.RetryAfter, Reset: res.Reset}
	if res.Allowed {
		l.stats.passed.Add(1)
		return d
	}
	d.OverLimit = true
	if l.dryRun {
		l.dryRunned.Inc()
		l.stats.passed.Add(1)
		l.logf(now, "rate limit exceeded (dryRun: let through)", "key", keyString(k))
		d.Allowed = true
		return d
	}
	l.stats.rejected.Add(1)
	l.rejected.Inc()
	return d
}

func (l *Limiter) takeRemote(r *http.Request, k bkey, now int64) Result {
	if now >= l.downUntil.Load() {
		res, err := l.remote.Take(r.Context(), l.prefix+keyString(k), l.policy)
		if err == nil {
			return res
		}
		if r.Context().Err() == nil {
			l.downUntil.Store(now + storeRetry)
			l.logf(now, "rate-limit store failed; onStoreError applies until it answers again", "store", l.storeURL, "error", err.Error())
			l.storeErrs.Inc()
		}
		// else: the client went away while waiting; that says nothing about the store.
	} else {
		l.storeErrs.Inc()
	}
	switch l.onErr {
	case onErrAllow:
		return Result{Allowed: true, Remaining: l.policy.Capacity - 1}
	case onErrDeny:
		return Result{RetryAfter: time.Duration(storeRetry), Reset: time.Duration(storeRetry)}
	}
	res, _ := l.mem.take(k, now, &l.policy)
	return res
}

func keyString(k bkey) string {
	if k.s != "" {
		return k.s
	}
	if !k.ip.IsValid() {
		return "unknown"
	}
	return k.ip.String()
}

// logf logs at most once per logEvery per limiter.
func (l *Limiter) logf(now int64, msg string, args ...any) {
	last := l.lastLog.Load()
	if now-last < logEvery && last != 0 {
		return
	}
	if !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.logger.Warn(msg, args...)
}

// Reject answers 429 for a refused decision: Retry-After (whole seconds, at least 1), the
// RateLimit-Limit/Remaining/Reset headers, and the error body (JSON when the client accepts
// it).
func Reject(w http.ResponseWriter, r *http.Request, d Decision) {
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(ceilSecs(d.RetryAfter), 10))
	setHeaders(h, &d)
	core.Error(w, r, http.StatusTooManyRequests, "")
}

// SetHeaders adds RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset for d (used on
// allowed responses when `headers: true`).
func SetHeaders(h http.Header, d Decision) { setHeaders(h, &d) }

func setHeaders(h http.Header, d *Decision) {
	h["Ratelimit-Limit"] = []string{strconv.FormatInt(d.Limit, 10)}
	h["Ratelimit-Remaining"] = []string{strconv.FormatInt(max(d.Remaining, 0), 10)}
	h["Ratelimit-Reset"] = []string{strconv.FormatInt(ceilSecs(d.Reset), 10)}
}

func ceilSecs(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
