// Package cache is Conduit's shared HTTP cache for proxy routes (`proxy.<prefix>.cache`,
// `routes[].proxy.cache`), following RFC 9111 as a shared cache: freshness from
// Cache-Control s-maxage/max-age/Expires capped by ttlSecs, Vary-aware variants,
// stale-while-revalidate and stale-if-error, one upstream fetch per key under load, early
// refresh, and never storing what a shared cache must not (Authorization without explicit
// permission, Set-Cookie, private, no-store).
//
// Responses live in a Store chosen by `store:`. The in-memory store (an LRU with a byte
// budget) is built in; other modules register stores for URL schemes with RegisterStore: the
// redis module for redis:// and rediss://, the diskcache module for disk:/path. Stores are
// process-wide (they survive reloads) and shared by every route that names them.
//
// Every response through a cached route carries X-Cache: HIT, STALE, MISS, EXPIRED or
// BYPASS; see docs/cache.md. The Admin API's DELETE /cache/purge?url=… removes a URL, every
// variant of it, from every store.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
)

func init() {
	core.Register(core.Module{
		ID:          "http.cache",
		Feature:     "cache",
		Description: "RFC 9111 response cache for proxy routes (memory; Redis and disk stores by registration)",
		RouteKeys:   []string{"cache"},
		StoreValued: true,
		AdminPaths:  []string{"DELETE /cache/purge"},
		AdminUnused: "no route has a cache (add `cache` to a proxy route)",
		Route:       provisionRoute,
		ConfigTypes: map[string]any{"cache": Config{}},
	})
}

// Config is one route's cache block (docs/cache.md).
type Config struct {
	// Store is "memory", "disk:/path" or a store URL; a Secret because Redis URLs carry
	// passwords.
	Store                    *config.Secret `json:"store" cfg:"required" doc:"memory, disk:/path, or a store URL (redis://…)"`
	TTLSecs                  *uint64        `json:"ttlSecs" doc:"freshness when the response gives none"`
	MaxSizeMb                *uint64        `json:"maxSizeMb" minimum:"1" default:"256"`
	StaleWhileRevalidateSecs uint32         `json:"staleWhileRevalidateSecs"`
	StaleIfErrorSecs         uint32         `json:"staleIfErrorSecs"`
	EarlyRefreshSecs         uint32         `json:"earlyRefreshSecs"`
	VaryHeaders              []string       `json:"varyHeaders"`
	SkipPaths                []string       `json:"skipPaths"`
	SkipIfCookie             bool           `json:"skipIfCookie"`
	Methods                  []string       `json:"methods"`
}

// Sizes. DefaultMaxSizeMb applies when maxSizeMb is not set (an unbounded in-process cache is
// an out-of-memory risk; docs/cache.md, "Decisions").
const (
	DefaultMaxSizeMb = 256
	// MaxEntryBytes caps one cached body; a larger response streams through uncached.
	MaxEntryBytes = 16 << 20
	// herdTimeout is how long a request waits for another's fetch of the same key.
	herdTimeout = 10 * time.Second
	// refreshTimeout bounds a background refresh.
	refreshTimeout = 30 * time.Second
	// remoteRetry is how long a failed shared store is left alone (fail-open meanwhile).
	remoteRetry = int64(time.Second)
	// backgroundSlots bounds concurrent background store writes and refreshes per route.
	backgroundSlots = 16
)

// X-Cache values. Each is one shared slice: the hit path assigns it, never builds it.
var (
	xHit     = []string{"HIT"}
	xStale   = []string{"STALE"}
	xMiss    = []string{"MISS"}
	xExpired = []string{"EXPIRED"}
	xBypass  = []string{"BYPASS"}
)

// Cache is one route's configured cache: a core.Middleware around the route's proxy handler.
type Cache struct {
	name       string
	pol        policy
	store      Store
	mem        *MemStore // set when store is the in-memory store: the allocation-free path
	async      bool
	storeLabel string
	get, head  bool
	methods    []string // cacheable methods other than GET and HEAD
	vary       []string // canonical, sorted
	skip       *skippaths.Matcher
	skipCookie bool
	keyScheme  string // "http\x00" …
	keyPort    string // "\x008080\x00"
	maxEntry   int
	flights    *flights
	bg         chan struct{}
	logger     *slog.Logger

	hits, misses *telemetry.Metric

	downUntil atomic.Int64
	lastLog   atomic.Int64
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Cache)(nil)
)

// Wrap implements core.Middleware.
func (c *Cache) Wrap(next http.Handler) http.Handler { return &handler{c: c, next: next} }

func provisionRoute(ctx *core.SiteContext, _ string, node any, path, route string) core.Middleware {
	c, ok := build(ctx, node, path, route)
	if !ok {
		return nil
	}
	return c
}

func build(ctx *core.SiteContext, node config.Node, path, route string) (*Cache, bool) {
	var cfg Config
	before := len(ctx.Diag.Errors())
	config.Decode(node, path, &cfg, ctx.Diag)
	if len(ctx.Diag.Errors()) > before {
		return nil, false
	}
	c := &Cache{
		name:   route,
		pol:    policy{ttl: -1},
		logger: ctx.Logger.With("cache", path),
		bg:     make(chan struct{}, backgroundSlots),
	}
	if cfg.TTLSecs != nil {
		c.pol.ttl = int64(min(*cfg.TTLSecs, maxDelta))
		if *cfg.TTLSecs == 0 {
			ctx.Warnf(config.Join(path, "ttlSecs"), "0 keeps nothing fresh: only responses served stale (staleWhileRevalidateSecs, staleIfErrorSecs) would use the cache, and none is stored")
		}
	}
	c.pol.swr = int64(cfg.StaleWhileRevalidateSecs)
	c.pol.sie = int64(cfg.StaleIfErrorSecs)
	c.pol.earlyRefresh = int64(cfg.EarlyRefreshSecs) * int64(time.Second)
	if cfg.EarlyRefreshSecs > 0 && cfg.TTLSecs != nil && uint64(cfg.EarlyRefreshSecs) >= *cfg.TTLSecs {
		ctx.Warnf(config.Join(path, "earlyRefreshSecs"), "is ≥ ttlSecs (%d): every hit starts a background refresh", *cfg.TTLSecs)
	}
	budget := int64(DefaultMaxSizeMb) << 20
	if cfg.MaxSizeMb != nil {
		if *cfg.MaxSizeMb < 1 {
			ctx.Errorf(config.Join(path, "maxSizeMb"), "must be ≥ 1")
		} else {
			budget = int64(min(*cfg.MaxSizeMb, 1<<40)) << 20
		}
	}
	c.maxEntry = int(min(int64(MaxEntryBytes), budget/4))
	for i, h := range cfg.VaryHeaders {
		if !core.IsToken(h) {
			ctx.Errorf(config.Index(config.Join(path, "varyHeaders"), i), "must be a header name, got %q", h)
			continue
		}
		n := textproto.CanonicalMIMEHeaderKey(h)
		if !slices.Contains(c.vary, n) {
			c.vary = append(c.vary, n)
		}
	}
	slices.Sort(c.vary)
	c.skip = skippaths.New(cfg.SkipPaths, config.Join(path, "skipPaths"), ctx.Diag)
	c.skipCookie = cfg.SkipIfCookie
	methods := cfg.Methods
	if methods == nil {
		methods = []string{http.MethodGet, http.MethodHead}
	}
	for i, m := range methods {
		p := config.Index(config.Join(path, "methods"), i)
		if !core.IsToken(m) {
			ctx.Errorf(p, "must be an HTTP method, got %q", m)
			continue
		}
		m = strings.ToUpper(m)
		switch m {
		case http.MethodGet:
			c.get = true
		case http.MethodHead:
			c.head = true
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodConnect:
			ctx.Warnf(p, "caching %s: the request body is not part of the cache key, so different bodies share one response", m)
			c.methods = append(c.methods, m)
		default:
			c.methods = append(c.methods, m)
		}
	}
	if len(methods) == 0 {
		ctx.Warnf(config.Join(path, "methods"), "is empty: nothing is cached on this route")
	}
	if len(ctx.Diag.Errors()) > before {
		return nil, false
	}
	c.store, c.storeLabel = openStore(ctx, cfg.Store.Reveal(), config.Join(path, "store"), budget, cfg.MaxSizeMb != nil)
	if c.store == nil {
		return nil, false
	}
	c.mem, _ = c.store.(*MemStore)
	_, c.async = c.store.(AsyncStore)
	c.keyScheme = ctx.Site.Scheme() + "\x00"
	c.keyPort = "\x00" + strconv.Itoa(ctx.Site.Port) + "\x00"
	c.flights = newFlights()
	c.hits = ctx.Global.Metrics.Counter("conduit_cache_hits_total", "Proxy cache hits, by route.", "route").With(c.name)
	c.misses = ctx.Global.Metrics.Counter("conduit_cache_misses_total", "Proxy cache misses (miss or expired), by route.", "route").With(c.name)
	agg := aggregator(ctx)
	agg.add(c, ctx.Site.Scheme(), ctx.Site.Port)
	return c, true
}

// sharedStore is what ctx.Shared keeps per store value.
type sharedStore struct {
	once   sync.Once
	store  Store
	err    error
	budget int64
}

// openStore returns the process-wide store for a store value, building it on first use.
func openStore(ctx *core.SiteContext, raw, path string, budget int64, budgetSet bool) (Store, string) {
	label := config.RedactURL(raw)
	scheme := storeScheme(raw)
	var f StoreFactory
	switch {
	case raw == "memory":
	case scheme == "redis" || scheme == "rediss" || scheme == "disk":
		var ok bool
		if f, ok = lookupStore(scheme); !ok {
			e, _ := core.LookupStoreScheme(scheme)
			ctx.Warnf(path, "store %s:… needs feature %q, which is not compiled into this binary (%s); using the in-memory store", scheme, e.Feature, core.FeatureRemedy(e.Feature))
			raw, label = "memory", "memory"
		}
	default:
		if scheme != "" {
			if sf, ok := lookupStore(scheme); ok {
				f = sf
				break
			}
		}
		ctx.Errorf(path, "must be \"memory\", \"redis://…\", \"rediss://…\" or \"disk:/path\", got %q", label)
		return nil, label
	}
	if f == nil && raw != "memory" {
		return nil, label
	}
	// The factory runs outside ctx.Shared's lock (it may use ctx.Shared itself, as the
	// redis module does for its client), once per store value for the whole process.
	ss := core.SharedOf(ctx.Shared, "cache.store:"+raw, func() *sharedStore { return &sharedStore{budget: budget} })
	ss.once.Do(func() {
		if f == nil {
			ss.store = NewMemStore(ss.budget)
			return
		}
		ss.store, ss.err = f(ctx, raw, StoreOptions{MaxBytes: ss.budget})
	})
	if ss.err != nil {
		ctx.Errorf(path, "%v", ss.err)
		return nil, label
	}
	if budgetSet && ss.budget != budget {
		ctx.Warnf(config.Join(strings.TrimSuffix(path, ".store"), "maxSizeMb"), "has no effect: store %s already has a budget of %d MiB, fixed by the first route that used it (changing it needs a restart)", label, ss.budget>>20)
	}
	return ss.store, label
}

// appendKey appends the primary key of a request: method group, scheme, the canonical
// authority (host and a non-default port, as the core made it canonical and as it is sent
// upstream; docs/security.md), listener port, and the canonical request target (escaped
// path and query), separated by NUL bytes.
func (c *Cache) appendKey(b []byte, group, host string, r *http.Request) []byte {
	b = append(b, group...)
	b = append(b, 0)
	b = append(b, c.keyScheme...)
	b = append(b, host...)
	b = append(b, c.keyPort...)
	p := r.URL.RawPath
	if p == "" {
		p = r.URL.Path
	}
	b = append(b, p...)
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		b = append(b, '?')
		b = append(b, r.URL.RawQuery...)
	}
	return b
}

// Key returns the primary key of a URL as the cache builds it for a request on a listener
// port: what DELETE /cache/purge computes. group is "GET" for GET and HEAD; host is the
// canonical authority and target the canonical request target (docs/security.md).
func Key(group, scheme, host string, port int, target string) string {
	b := make([]byte, 0, 64+len(host)+len(target))
	b = append(b, group...)
	b = append(b, 0)
	b = append(b, scheme...)
	b = append(b, 0)
	b = append(b, host...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(port), 10)
	b = append(b, 0)
	b = append(b, target...)
	return string(b)
}

// handler is the cache wrapped around one route's proxy handler.
type handler struct {
	c    *Cache
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if st := core.State(r); st != nil && st.Route == "" {
		st.Route = c.name
	}
	group := ""
	switch r.Method {
	case http.MethodGet:
		if c.get {
			group = http.MethodGet
		}
	case http.MethodHead:
		if c.head {
			group = http.MethodGet
		}
	default:
		if slices.Contains(c.methods, r.Method) {
			group = r.Method
		}
	}
	if group == "" {
		h.bypass(w, r, true)
		return
	}
	if c.skip.Match(r.URL.Path) || (c.skipCookie && len(r.Header["Cookie"]) > 0) ||
		len(r.Header["Range"]) > 0 || len(r.Header["Upgrade"]) > 0 || requestNoStore(r.Header) {
		h.bypass(w, r, false)
		return
	}
	auth := len(r.Header["Authorization"]) > 0
	var kb [256]byte
	key := c.appendKey(kb[:0], group, r.Host, r)
	now := time.Now().UnixNano()
	remoteOK := true
	var e *Entry
	if c.mem != nil {
		e = c.mem.lookup(key, r.Header, auth, now)
	} else if now < c.downUntil.Load() {
		remoteOK = false
	} else {
		list, err := c.store.Get(r.Context(), string(key))
		if err != nil {
			c.storeFailed(now, "get", err)
			remoteOK = false
		}
		for _, v := range list {
			if now < v.Expires() && v.Matches(r.Header) && (!auth || v.AuthOK) {
				e = v
				break
			}
		}
	}
	xc := xMiss
	var stale *Entry
	if e != nil {
		switch {
		case now < e.FreshUntil:
			c.hits.Inc()
			c.serve(w, r, e, xHit, now)
			if c.pol.earlyRefresh > 0 && e.FreshUntil-now < c.pol.earlyRefresh {
				h.refresh(r, e, string(key))
			}
			return
		case now < e.SWRUntil:
			c.hits.Inc()
			c.serve(w, r, e, xStale, now)
			h.refresh(r, e, string(key))
			return
		case now < e.SIEUntil:
			stale = e
		}
		xc = xExpired
	}
	storeOK := remoteOK && r.Method != http.MethodHead
	if !storeOK {
		c.misses.Inc()
		// HEAD misses and a failed shared store: straight through, nothing stored.
		h.fetch(w, r, "", nil, stale, xc, auth, false)
		return
	}
	ks := string(key)
	fl, leader := c.flights.join(ks)
	if !leader {
		t := time.NewTimer(herdTimeout)
		select {
		case <-fl.done:
			t.Stop()
			if fe := fl.entry; fe != nil && fe.Matches(r.Header) && (!auth || fe.AuthOK) {
				c.hits.Inc()
				c.serve(w, r, fe, xHit, time.Now().UnixNano())
				return
			}
			if fl.failed && stale != nil {
				// The upstream just failed for the request we waited on: the stale copy
				// answers without a second try.
				c.hits.Inc()
				c.serve(w, r, stale, xStale, time.Now().UnixNano())
				return
			}
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		c.misses.Inc()
		h.fetch(w, r, ks, nil, stale, xc, auth, true)
		return
	}
	c.misses.Inc()
	h.fetch(w, r, ks, fl, stale, xc, auth, true)
}

// bypass passes the request through uncached. An unsafe method that succeeds invalidates
// the stored responses of its URL (RFC 9111 §4.4).
func (h *handler) bypass(w http.ResponseWriter, r *http.Request, methodBypass bool) {
	w.Header()["X-Cache"] = xBypass
	h.next.ServeHTTP(w, r)
	if !methodBypass || !unsafeMethod(r.Method) {
		return
	}
	st := core.State(r)
	if st == nil || st.Writer.Status < 200 || st.Writer.Status >= 400 {
		return
	}
	c := h.c
	key := c.appendKey(make([]byte, 0, 128), http.MethodGet, r.Host, r)
	if c.mem != nil {
		_, _ = c.mem.Purge(r.Context(), string(key))
		return
	}
	ks := string(key)
	c.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		if _, err := c.store.Purge(ctx, ks); err != nil {
			c.storeFailed(time.Now().UnixNano(), "invalidate", err)
		}
	})
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// serve answers from a stored entry: its headers by slice assignment, a computed Age, and
// the body bytes. A GET whose If-None-Match names the entry's ETag gets 304.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, e *Entry, xc []string, now int64) {
	hdr := w.Header()
	for i := range e.hdrs {
		hdr[e.hdrs[i].k] = e.hdrs[i].v
	}
	hdr["Age"] = e.age(now)
	hdr["X-Cache"] = xc
	if e.etag != "" && e.Status == http.StatusOK {
		if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, e.etag) {
			delete(hdr, "Content-Length")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead && len(e.Body) > 0 {
		_, _ = w.Write(e.Body)
	}
}

// etagMatch is the weak comparison of If-None-Match (RFC 9110 §13.1.2).
func etagMatch(list []string, etag string) bool {
	tag := strings.TrimPrefix(etag, "W/")
	for _, line := range list {
		for line != "" {
			var item string
			item, line = nextDirective(line)
			item = trimOWS(item)
			if item == "*" || strings.TrimPrefix(item, "W/") == tag {
				return true
			}
		}
	}
	return false
}

// fetch forwards the request, streaming the response to the client while keeping a copy
// when it may be stored. With a stale candidate, a 5xx (the proxy's own 502/504 on
// connection errors and timeouts included) is swallowed and the stale copy served instead.
func (h *handler) fetch(w http.ResponseWriter, r *http.Request, ks string, fl *flight, stale *Entry, xc []string, auth, store bool) {
	c := h.c
	var stored *Entry
	failed := false
	if fl != nil {
		defer func() { c.flights.finish(ks, fl, stored, failed) }()
	}
	cw := &capture{c: c, w: w, hdr: make(http.Header, 8), xc: xc, auth: auth, store: store, hold: stale != nil}
	var orig http.Header
	if store {
		orig = maps.Clone(r.Header) // the proxy edits r.Header in place; Vary needs the client's headers
	}
	h.next.ServeHTTP(cw, r)
	failed = cw.status >= 500
	if cw.swallowed {
		c.serve(w, r, stale, xStale, time.Now().UnixNano())
		return
	}
	if !cw.buffering || cw.failed || r.Context().Err() != nil {
		return
	}
	if cl := cw.snap["Content-Length"]; len(cl) == 1 && cl[0] != strconv.Itoa(len(cw.buf)) {
		return
	}
	delete(cw.snap, "Content-Length")
	e := &Entry{
		Key: ks, Status: cw.status, Header: cw.snap, Body: cw.buf,
		Vary:     varyFields(varyNames(c.vary, cw.snap["Vary"]), orig),
		StoredAt: cw.received.UnixNano(), InitialAge: cw.v.initialAge,
		FreshUntil: cw.v.freshUntil, SWRUntil: cw.v.swrUntil, SIEUntil: cw.v.sieUntil,
		AuthOK: cw.v.authOK,
	}
	e.Finish()
	stored = e
	c.put(e)
}

// put stores e: in line for the memory store, in the background for slow stores.
func (c *Cache) put(e *Entry) {
	if !c.async {
		if err := c.store.Set(context.Background(), e); err != nil {
			c.storeFailed(time.Now().UnixNano(), "set", err)
		}
		return
	}
	c.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		if err := c.store.Set(ctx, e); err != nil {
			c.storeFailed(time.Now().UnixNano(), "set", err)
		}
	})
}

// background runs f in a goroutine when a slot is free; otherwise f is dropped (a cache
// may always decline to store).
func (c *Cache) background(f func()) bool {
	select {
	case c.bg <- struct{}{}:
	default:
		return false
	}
	go func() {
		defer func() { <-c.bg }()
		f()
	}()
	return true
}

// refresh fetches key again in the background (stale-while-revalidate, early refresh), at
// most once at a time per key.
func (h *handler) refresh(r *http.Request, e *Entry, ks string) {
	c := h.c
	if !e.refreshing.CompareAndSwap(false, true) {
		return
	}
	fl, ok := c.flights.tryLead(ks)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	bg := r.Clone(ctx)
	bg.Body = http.NoBody
	bg.ContentLength = 0
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		delete(bg.Header, k)
	}
	started := c.background(func() {
		defer cancel()
		defer e.refreshing.Store(false)
		h.fetch(discard{h: http.Header{}}, bg, ks, fl, nil, xMiss, len(bg.Header["Authorization"]) > 0, true)
	})
	if !started {
		cancel()
		c.flights.finish(ks, fl, nil, false)
		e.refreshing.Store(false)
	}
}

// storeFailed marks a shared store down for a second and logs at most every 10 s.
func (c *Cache) storeFailed(now int64, op string, err error) {
	if c.mem == nil {
		c.downUntil.Store(now + remoteRetry)
	}
	if last := c.lastLog.Load(); now-last > 10*int64(time.Second) && c.lastLog.CompareAndSwap(last, now) {
		c.logger.Warn("cache store failed; serving without it (fail-open)", "store", c.storeLabel, "op", op, "error", err)
	}
}

// discard is the ResponseWriter of a background refresh.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}

// capture streams a response to the client while keeping a bounded copy to store.
type capture struct {
	c        *Cache
	w        http.ResponseWriter
	hdr      http.Header // the handler's header map; copied to w at WriteHeader
	xc       []string
	auth     bool
	store    bool // the response may be stored if the policy agrees
	hold     bool // a stale copy waits: swallow a 5xx
	wrote    bool
	status   int
	received time.Time
	v        verdict
	snap     http.Header

	buffering bool
	failed    bool
	swallowed bool
	buf       []byte
}

// Header implements http.ResponseWriter.
func (cw *capture) Header() http.Header { return cw.hdr }

// WriteHeader implements http.ResponseWriter.
func (cw *capture) WriteHeader(code int) {
	if cw.wrote {
		return
	}
	if code < 200 {
		dst := cw.w.Header()
		maps.Copy(dst, cw.hdr)
		cw.w.WriteHeader(code)
		return
	}
	cw.wrote = true
	cw.status = code
	if cw.hold && code >= 500 {
		cw.swallowed = true
		return
	}
	if cw.store {
		cw.received = time.Now()
		cw.v = cw.c.pol.decide(cw.auth, code, cw.hdr, cw.received)
		if cw.v.ok {
			cw.snapshot()
		}
	}
	dst := cw.w.Header()
	maps.Copy(dst, cw.hdr)
	dst["X-Cache"] = cw.xc
	cw.w.WriteHeader(code)
}

// snapshot copies the headers to store and starts buffering when the size allows.
func (cw *capture) snapshot() {
	s := cw.hdr.Clone()
	for _, k := range []string{"Age", "X-Cache", "X-Request-Id", "Transfer-Encoding", "Connection", "Keep-Alive"} {
		delete(s, k)
	}
	if _, ok := s["Date"]; !ok {
		s["Date"] = []string{cw.v.date.UTC().Format(http.TimeFormat)}
	}
	size := 0
	if cl := s["Content-Length"]; len(cl) == 1 {
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 || n > int64(cw.c.maxEntry) {
			return
		}
		size = int(n)
	}
	cw.snap = s
	cw.buffering = true
	cw.buf = make([]byte, 0, max(size, 512))
}

// Write implements http.ResponseWriter.
func (cw *capture) Write(p []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.swallowed {
		return len(p), nil
	}
	if cw.buffering {
		if len(cw.buf)+len(p) > cw.c.maxEntry {
			cw.buffering, cw.buf = false, nil
		} else {
			cw.buf = append(cw.buf, p...)
		}
	}
	n, err := cw.w.Write(p)
	if err != nil {
		cw.failed = true
	}
	return n, err
}

// Flush implements http.Flusher (streamed responses keep streaming).
func (cw *capture) Flush() {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.swallowed {
		return
	}
	if f, ok := cw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (cw *capture) Unwrap() http.ResponseWriter { return cw.w }

// String describes the cache for logs.
func (c *Cache) String() string { return fmt.Sprintf("cache(%s, %s)", c.name, c.storeLabel) }
