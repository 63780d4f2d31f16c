package cache_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/cache"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// origin is a test upstream that counts requests per path and answers according to query
// parameters: cc (Cache-Control), cookie (Set-Cookie), vary (Vary), status, body, expires.
type origin struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
	total  atomic.Int64
	fail   atomic.Int32 // 1: answer 500
	gen    atomic.Int64 // bumps the body, to tell fresh from stale
	block  chan struct{}
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{counts: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.counts[r.URL.Path]++
	block := o.block
	o.mu.Unlock()
	o.total.Add(1)
	if block != nil {
		<-block
	}
	q := r.URL.Query()
	if o.fail.Load() == 1 {
		http.Error(w, "upstream broke", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	if v := q.Get("cc"); v != "" {
		h.Set("Cache-Control", v)
	}
	if q.Get("cookie") != "" {
		h.Set("Set-Cookie", "session=abc")
	}
	if v := q.Get("vary"); v != "" {
		h.Set("Vary", v)
	}
	if v := q.Get("etag"); v != "" {
		h.Set("ETag", `"`+v+`"`)
	}
	status := 200
	if v := q.Get("status"); v != "" {
		status, _ = strconv.Atoi(v)
	}
	body := "body " + r.URL.Path + " gen=" + strconv.FormatInt(o.gen.Load(), 10) +
		" lang=" + r.Header.Get("Accept-Language") + " auth=" + r.Header.Get("Authorization")
	if v := q.Get("size"); v != "" {
		n, _ := strconv.Atoi(v)
		body = strings.Repeat("x", n)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

func start(t *testing.T, o *origin, cacheBlock string) *servertest.Server {
	t.Helper()
	return servertest.Start(t, `
port: 8080
proxy:
  /:
    targets: ["`+o.URL+`"]
    cache: `+cacheBlock+`
`)
}

func xcache(r servertest.Reply) string { return r.Header.Get("X-Cache") }

func TestMissThenHit(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	u := srv.URL(8080) + "/a"
	r1 := servertest.Get(t, u)
	if r1.Status != 200 || xcache(r1) != "MISS" {
		t.Fatalf("first: %d %q", r1.Status, xcache(r1))
	}
	r2 := servertest.Get(t, u)
	if r2.Status != 200 || xcache(r2) != "HIT" || r2.Body != r1.Body {
		t.Fatalf("second: %d %q %q vs %q", r2.Status, xcache(r2), r2.Body, r1.Body)
	}
	if a := r2.Header.Get("Age"); a == "" {
		t.Fatal("a hit must carry Age")
	}
	if r2.Header.Get("Content-Length") != strconv.Itoa(len(r1.Body)) {
		t.Fatalf("Content-Length %q", r2.Header.Get("Content-Length"))
	}
	if n := o.count("/a"); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
	// HEAD is answered from the GET entry, without a body.
	h := servertest.Do(t, http.MethodHead, u)
	if xcache(h) != "HIT" || h.Body != "" || o.count("/a") != 1 {
		t.Fatalf("HEAD: %q body %q, upstream %d", xcache(h), h.Body, o.count("/a"))
	}
	// Metrics: hits and misses by route.
	hits, misses := metricValue(srv, "conduit_cache_hits_total", "/"), metricValue(srv, "conduit_cache_misses_total", "/")
	if hits != 2 || misses != 1 {
		t.Fatalf("metrics hits=%v misses=%v, want 2 and 1", hits, misses)
	}
}

func metricValue(srv *servertest.Server, name, route string) float64 {
	for _, f := range srv.Metrics().Families() {
		if f.Name != name {
			continue
		}
		for _, m := range f.Children() {
			if len(m.LabelValues) == 1 && m.LabelValues[0] == route {
				return m.Value()
			}
		}
	}
	return -1
}

// TestNotStored: a shared cache never stores these (RFC 9111 §3, docs/cache.md); each is
// requested twice and must reach the upstream twice.
func TestNotStored(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	base := srv.URL(8080)
	cases := []struct {
		name, path string
		hdr        []string
	}{
		{"no-store", "/ns?cc=no-store", nil},
		{"private", "/priv?cc=private,max-age=60", nil},
		{"s-maxage=0", "/s0?cc=s-maxage=0", nil},
		{"max-age=0", "/m0?cc=max-age=0", nil},
		{"no-cache", "/nc?cc=no-cache", nil},
		{"set-cookie", "/cookie?cookie=1", nil},
		{"authorization without permission", "/auth", []string{"Authorization", "Bearer x"}},
		{"authorization with max-age only", "/auth2?cc=max-age=60", []string{"Authorization", "Bearer x"}},
		{"server error", "/err?status=503", nil},
		{"vary star", "/vstar?vary=*", nil},
		{"partial content status", "/p?status=206&cc=max-age=60", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.SplitN(tc.path, "?", 2)[0]
			for i := range 2 {
				r := servertest.Get(t, base+tc.path, tc.hdr...)
				if xcache(r) != "MISS" {
					t.Fatalf("request %d: X-Cache %q, want MISS", i, xcache(r))
				}
			}
			if n := o.count(path); n != 2 {
				t.Fatalf("upstream saw %d requests, want 2", n)
			}
		})
	}
}

// TestAuthorization: RFC 9111 §3.5. A response to a request with Authorization is stored
// only with public, s-maxage or must-revalidate, and an authorised request is only served
// from such an entry.
func TestAuthorization(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	base := srv.URL(8080)
	// Stored from an anonymous request without `public`: not usable with Authorization.
	if r := servertest.Get(t, base+"/anon"); xcache(r) != "MISS" {
		t.Fatal(xcache(r))
	}
	if r := servertest.Get(t, base+"/anon", "Authorization", "Bearer t"); xcache(r) != "MISS" || !strings.Contains(r.Body, "auth=Bearer t") {
		t.Fatalf("authorised request served from a non-public entry: %q %q", xcache(r), r.Body)
	}
	for _, cc := range []string{"public", "s-maxage=30", "must-revalidate,max-age=30"} {
		p := "/pub-" + strings.NewReplacer("=", "", ",", "").Replace(cc)
		u := base + p + "?cc=" + url.QueryEscape(cc)
		servertest.Get(t, u, "Authorization", "Bearer t")
		r := servertest.Get(t, u, "Authorization", "Bearer t")
		if xcache(r) != "HIT" || o.count(p) != 1 {
			t.Fatalf("%s: %q, upstream %d; want HIT after one fetch", cc, xcache(r), o.count(p))
		}
	}
}

func TestVaryVariantsAndPurge(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	u := srv.URL(8080) + "/v?vary=Accept-Language"
	en := servertest.Get(t, u, "Accept-Language", "en", "Host", "Example.COM")
	fr := servertest.Get(t, u, "Accept-Language", "fr", "Host", "example.com")
	if xcache(en) != "MISS" || xcache(fr) != "MISS" || o.count("/v") != 2 {
		t.Fatalf("variants: %q %q upstream %d", xcache(en), xcache(fr), o.count("/v"))
	}
	// Spellings of one authority share entries (case, trailing dot, the default port); another
	// port is another authority, as it is for the upstream (docs/security.md).
	en2 := servertest.Get(t, u, "Accept-Language", "en", "Host", "EXAMPLE.com.:80")
	fr2 := servertest.Get(t, u, "Accept-Language", "fr", "Host", "example.com")
	if xcache(en2) != "HIT" || en2.Body != en.Body || xcache(fr2) != "HIT" || fr2.Body != fr.Body {
		t.Fatalf("variant hits: %q %q / %q %q", xcache(en2), en2.Body, xcache(fr2), fr2.Body)
	}
	// Purge by URL with a mixed-case host removes both variants.
	res := purge(t, srv, "http://Example.Com/v?vary=Accept-Language")
	if res["status"] != "ok" || res["purged"] != true {
		t.Fatalf("purge: %v", res)
	}
	if r := servertest.Get(t, u, "Accept-Language", "en", "Host", "example.com"); xcache(r) != "MISS" {
		t.Fatalf("en after purge: %q", xcache(r))
	}
	if r := servertest.Get(t, u, "Accept-Language", "fr", "Host", "example.com"); xcache(r) != "MISS" {
		t.Fatalf("fr after purge: %q", xcache(r))
	}
	if res := purge(t, srv, "http://example.com/nothing-here"); res["purged"] != false {
		t.Fatalf("purge of an unknown URL: %v", res)
	}
}

func TestVaryHeadersConfig(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60, varyHeaders: [accept-language]}`)
	u := srv.URL(8080) + "/cfg"
	a := servertest.Get(t, u, "Accept-Language", "de")
	b := servertest.Get(t, u, "Accept-Language", "it")
	if xcache(a) != "MISS" || xcache(b) != "MISS" || a.Body == b.Body {
		t.Fatalf("configured vary: %q %q", xcache(a), xcache(b))
	}
	if r := servertest.Get(t, u, "Accept-Language", "de"); xcache(r) != "HIT" || r.Body != a.Body {
		t.Fatalf("de again: %q %q", xcache(r), r.Body)
	}
}

func purge(t *testing.T, srv *servertest.Server, target string) map[string]any {
	t.Helper()
	h := servertest.AdminHandler(t, srv.Current(), http.MethodDelete, "/cache/purge")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/cache/purge?url="+url.QueryEscape(target), nil))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("purge body %q: %v", rec.Body.String(), err)
	}
	return out
}

// TestThunderingHerd: concurrent misses of one key make one upstream request.
func TestThunderingHerd(t *testing.T) {
	o := newOrigin(t)
	release := make(chan struct{})
	o.block = release
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	u := srv.URL(8080) + "/herd"
	const n = 20
	var wg sync.WaitGroup
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = servertest.Get(t, u).Body
		}()
	}
	// Wait until the leader's request is at the upstream, give the others time to queue.
	deadline := time.Now().Add(10 * time.Second)
	for o.total.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	o.mu.Lock()
	o.block = nil
	o.mu.Unlock()
	close(release)
	wg.Wait()
	if c := o.count("/herd"); c != 1 {
		t.Fatalf("upstream saw %d requests for one key, want 1", c)
	}
	for i, b := range bodies {
		if b != bodies[0] || b == "" {
			t.Fatalf("body %d = %q, want %q", i, b, bodies[0])
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 1, staleWhileRevalidateSecs: 60}`)
	u := srv.URL(8080) + "/swr"
	first := servertest.Get(t, u)
	o.gen.Store(1)
	// Once the TTL is over, the stale copy is served at once and refreshed behind it.
	var stale servertest.Reply
	waitFor(t, "a STALE answer", func() bool { stale = servertest.Get(t, u); return xcache(stale) == "STALE" })
	if stale.Body != first.Body {
		t.Fatalf("stale body %q, want %q", stale.Body, first.Body)
	}
	waitFor(t, "the refreshed copy", func() bool {
		r := servertest.Get(t, u)
		return xcache(r) == "HIT" && strings.Contains(r.Body, "gen=1")
	})
	if c := o.count("/swr"); c != 2 {
		t.Fatalf("upstream saw %d requests, want 2 (one fetch, one refresh)", c)
	}
}

func TestStaleIfError(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 1, staleIfErrorSecs: 60}`)
	u := srv.URL(8080) + "/sie"
	first := servertest.Get(t, u)
	o.fail.Store(1)
	waitFor(t, "a STALE answer on upstream 500", func() bool {
		r := servertest.Get(t, u)
		if xcache(r) == "HIT" {
			return false
		}
		if xcache(r) != "STALE" || r.Status != 200 || r.Body != first.Body {
			t.Fatalf("on 500: %d %q %q", r.Status, xcache(r), r.Body)
		}
		return true
	})
	// A connection error (the proxy answers 502 itself) also serves the stale copy.
	o.Close()
	r := servertest.Get(t, u)
	if xcache(r) != "STALE" || r.Status != 200 || r.Body != first.Body {
		t.Fatalf("on connection error: %d %q %q", r.Status, xcache(r), r.Body)
	}
}

func TestStaleIfErrorDisabledByMustRevalidate(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 1, staleIfErrorSecs: 60}`)
	u := srv.URL(8080) + "/mr?cc=" + url.QueryEscape("max-age=1, must-revalidate")
	servertest.Get(t, u)
	o.fail.Store(1)
	waitFor(t, "the error to reach the client", func() bool {
		r := servertest.Get(t, u)
		if xcache(r) == "STALE" {
			t.Fatal("must-revalidate response served stale")
		}
		return r.Status == 500
	})
}

func TestEarlyRefresh(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 3, earlyRefreshSecs: 2}`)
	u := srv.URL(8080) + "/early"
	servertest.Get(t, u)
	o.gen.Store(1)
	// Within the last 2 s of the TTL a hit starts a background refresh; clients keep
	// getting HITs and never see a stale or missing answer.
	waitFor(t, "the early refresh", func() bool {
		r := servertest.Get(t, u)
		if xcache(r) != "HIT" {
			t.Fatalf("X-Cache %q during early refresh, want HIT", xcache(r))
		}
		return strings.Contains(r.Body, "gen=1")
	})
}

func TestBypass(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60, skipPaths: ["/skip/**"], skipIfCookie: true}`)
	base := srv.URL(8080)
	cases := []struct {
		name, path string
		hdr        []string
	}{
		{"skipPaths", "/skip/x", nil},
		{"skipIfCookie", "/c", []string{"Cookie", "a=b"}},
		{"range", "/range", []string{"Range", "bytes=0-3"}},
		{"request no-store", "/rns", []string{"Cache-Control", "no-store"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 {
				if r := servertest.Get(t, base+tc.path, tc.hdr...); xcache(r) != "BYPASS" {
					t.Fatalf("X-Cache %q, want BYPASS", xcache(r))
				}
			}
			if c := o.count(tc.path); c != 2 {
				t.Fatalf("upstream saw %d, want 2", c)
			}
		})
	}
}

// TestUnsafeMethodInvalidates: a successful POST to a URL drops its stored response.
func TestUnsafeMethodInvalidates(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	u := srv.URL(8080) + "/inv"
	servertest.Get(t, u)
	if r := servertest.Get(t, u); xcache(r) != "HIT" {
		t.Fatal(xcache(r))
	}
	if r := servertest.Do(t, http.MethodPost, u); xcache(r) != "BYPASS" {
		t.Fatalf("POST: %q", xcache(r))
	}
	if r := servertest.Get(t, u); xcache(r) != "MISS" {
		t.Fatalf("after POST: %q, want MISS", xcache(r))
	}
}

func TestConditionalHit(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60}`)
	u := srv.URL(8080) + "/etag?etag=v1"
	servertest.Get(t, u)
	r := servertest.Get(t, u, "If-None-Match", `W/"v1"`)
	if r.Status != 304 || xcache(r) != "HIT" || r.Body != "" {
		t.Fatalf("conditional hit: %d %q %q", r.Status, xcache(r), r.Body)
	}
	if r := servertest.Get(t, u, "If-None-Match", `"v2"`); r.Status != 200 || xcache(r) != "HIT" {
		t.Fatalf("non-matching etag: %d %q", r.Status, xcache(r))
	}
}

// TestLargeResponseStreamsUncached: a body larger than the cacheable size is served whole
// and not stored.
func TestLargeResponseStreamsUncached(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 60, maxSizeMb: 1}`) // entries ≤ 256 KiB
	u := srv.URL(8080) + "/big?size=" + strconv.Itoa(600<<10)
	for range 2 {
		r := servertest.Get(t, u)
		if len(r.Body) != 600<<10 || xcache(r) != "MISS" {
			t.Fatalf("big: %d bytes, %q", len(r.Body), xcache(r))
		}
	}
	small := srv.URL(8080) + "/small?size=" + strconv.Itoa(100<<10)
	servertest.Get(t, small)
	if r := servertest.Get(t, small); xcache(r) != "HIT" || len(r.Body) != 100<<10 {
		t.Fatalf("small: %q %d", xcache(r), len(r.Body))
	}
}

// TestMissStreams: the first bytes of a cacheable response reach the client before the
// upstream has finished it, and the whole response is then stored.
func TestMissStreams(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "first|")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second")
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, `
port: 8080
proxy:
  /:
    targets: ["`+up.URL+`"]
    cache: {store: memory, ttlSecs: 60}
`)
	resp, err := http.Get(srv.URL(8080) + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first|" {
		t.Fatalf("first chunk %q %v", buf, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "second" {
		t.Fatalf("rest %q", rest)
	}
	r := servertest.Get(t, srv.URL(8080)+"/stream")
	if xcache(r) != "HIT" || r.Body != "first|second" {
		t.Fatalf("after streaming: %q %q", xcache(r), r.Body)
	}
}

// TestUpstreamAbortNotStored: a body cut off mid-way is never stored.
func TestUpstreamAbortNotStored(t *testing.T) {
	var n atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "only part")
		hj, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			hj.Close()
		}
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, `
port: 8080
proxy:
  /:
    targets: ["`+up.URL+`"]
    cache: {store: memory, ttlSecs: 60}
`)
	for range 2 {
		resp, err := http.Get(srv.URL(8080) + "/cut")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if n.Load() != 2 {
		t.Fatalf("upstream saw %d requests, want 2 (a torn body must not be stored)", n.Load())
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		block, path, msg string
	}{
		{`{ttlSecs: 60}`, "sites[0].proxy./.cache.store", "is required"},
		{`{store: memory, maxSizeMb: 0}`, "sites[0].proxy./.cache.maxSizeMb", "must be ≥ 1"},
		{`{store: "ftp://x"}`, "sites[0].proxy./.cache.store", "must be \"memory\""},
		{`{store: memory, varyHeaders: ["bad header"]}`, "sites[0].proxy./.cache.varyHeaders[0]", "must be a header name"},
		{`{store: memory, methods: ["G E T"]}`, "sites[0].proxy./.cache.methods[0]", "must be an HTTP method"},
		{`{store: memory, skipPaths: ["nope"]}`, "sites[0].proxy./.cache.skipPaths[0]", "must start with"},
		{`{store: memory, ttlSecs: -1}`, "sites[0].proxy./.cache.ttlSecs", "non-negative"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			src := `{"sites": [{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:1"], "cache": ` + yamlToJSON(tc.block) + `}}}]}`
			_, d, err := servertest.Build(src, config.FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range d.Errors() {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want error at %s containing %q; got %v", tc.path, tc.msg, d.Errors())
			}
		})
	}
	// Unknown keys warn with a suggestion; redis without the redis feature warns.
	src := `{"sites": [{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:1"], "cache": {"store": "memory", "ttlSec": 5}}}}]}`
	_, d, err := servertest.Build(src, config.FormatJSON)
	if err != nil || d.HasErrors() {
		t.Fatalf("%v %v", err, d.Errors())
	}
	if w := d.Warnings(); len(w) != 1 || w[0].Path != "sites[0].proxy./.cache.ttlSec" || !strings.Contains(w[0].Message, "ttlSecs") {
		t.Fatalf("warnings %v", w)
	}
}

// yamlToJSON turns the flow-style blocks of TestConfigValidation into JSON.
func yamlToJSON(s string) string {
	r := strings.NewReplacer("ttlSecs", `"ttlSecs"`, "store:", `"store":`, "maxSizeMb", `"maxSizeMb"`,
		"varyHeaders", `"varyHeaders"`, "methods", `"methods"`, "skipPaths", `"skipPaths"`, "memory", `"memory"`)
	return r.Replace(s)
}

// TestStaleIfErrorUnderLoad: while the upstream is failing, concurrent requests for a key in
// its stale-if-error window cost the upstream one request and all get the stale copy.
func TestStaleIfErrorUnderLoad(t *testing.T) {
	o := newOrigin(t)
	srv := start(t, o, `{store: memory, ttlSecs: 1, staleIfErrorSecs: 60}`)
	u := srv.URL(8080) + "/sieload"
	first := servertest.Get(t, u)
	time.Sleep(1100 * time.Millisecond) // past the 1 s TTL, without a request that would refresh it
	before := o.count("/sieload")
	o.fail.Store(1)
	release := make(chan struct{})
	o.mu.Lock()
	o.block = release
	o.mu.Unlock()
	const n = 10
	var wg sync.WaitGroup
	replies := make([]servertest.Reply, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = servertest.Get(t, u)
		}()
	}
	waitFor(t, "the leader at the upstream", func() bool { return o.count("/sieload") > before })
	time.Sleep(200 * time.Millisecond)
	o.mu.Lock()
	o.block = nil
	o.mu.Unlock()
	close(release)
	wg.Wait()
	for i, r := range replies {
		if r.Status != 200 || xcache(r) != "STALE" || r.Body != first.Body {
			t.Fatalf("servertest.Reply %d: %d %q %q", i, r.Status, xcache(r), r.Body)
		}
	}
	if got := o.count("/sieload") - before; got != 1 {
		t.Fatalf("upstream saw %d requests while failing, want 1", got)
	}
}

// TestRoutesEntry: the cache block also works on a routes[] entry's proxy, and its metrics
// are labelled with the entry's name.
func TestRoutesEntry(t *testing.T) {
	o := newOrigin(t)
	srv := servertest.Start(t, `
port: 8080
routes:
  - match: {path: "/r/**"}
    proxy:
      targets: ["`+o.URL+`"]
      cache: {store: memory, ttlSecs: 60}
`)
	u := srv.URL(8080) + "/r/x"
	if r := servertest.Get(t, u); xcache(r) != "MISS" {
		t.Fatalf("first: %q", xcache(r))
	}
	if r := servertest.Get(t, u); xcache(r) != "HIT" || o.count("/r/x") != 1 {
		t.Fatalf("second: %q, upstream %d", xcache(r), o.count("/r/x"))
	}
	if h := metricValue(srv, "conduit_cache_hits_total", "routes[0]"); h != 1 {
		t.Fatalf("hits{route=routes[0]} = %v", h)
	}
}
