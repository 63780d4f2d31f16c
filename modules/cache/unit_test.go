package cache

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	cases := []struct {
		in   []string
		want directives
	}{
		{nil, directives{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1}},
		{[]string{"max-age=60, public"}, directives{public: true, maxAge: 60, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1, present: true}},
		{[]string{`S-MAXAGE="30"`, "max-age=abc"}, directives{maxAge: 0, sMaxAge: 30, staleWhileRevalidate: -1, staleIfError: -1, present: true}},
		{[]string{`private="Set-Cookie, X", no-store`}, directives{private: true, noStore: true, maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1, present: true}},
		{[]string{"max-age=60, max-age=10"}, directives{maxAge: 10, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1, present: true}},
		{[]string{"max-age=99999999999999"}, directives{maxAge: maxDelta, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1, present: true}},
		{[]string{"stale-while-revalidate=5,stale-if-error=7,must-revalidate,proxy-revalidate,no-cache"},
			directives{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: 5, staleIfError: 7, mustRevalidate: true, proxyRevalidate: true, noCache: true, present: true}},
	}
	for _, tc := range cases {
		if got := parseCacheControl(tc.in); got != tc.want {
			t.Errorf("parseCacheControl(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	sec := int64(time.Second)
	type want struct {
		ok     bool
		fresh  int64 // seconds after now
		swr    int64
		sie    int64
		authOK bool
	}
	cases := []struct {
		name   string
		pol    policy
		auth   bool
		status int
		hdr    map[string]string
		want   want
	}{
		{"absent cc uses ttl", policy{ttl: 60}, false, 200, nil, want{ok: true, fresh: 60, swr: 60, sie: 60}},
		{"no ttl and no freshness", policy{ttl: -1}, false, 200, nil, want{}},
		{"s-maxage below ttl", policy{ttl: 60}, false, 200, map[string]string{"Cache-Control": "s-maxage=10"}, want{ok: true, fresh: 10, swr: 10, sie: 10, authOK: true}},
		{"s-maxage capped by ttl", policy{ttl: 60}, false, 200, map[string]string{"Cache-Control": "s-maxage=600"}, want{ok: true, fresh: 60, swr: 60, sie: 60, authOK: true}},
		{"s-maxage wins over max-age", policy{ttl: 600}, false, 200, map[string]string{"Cache-Control": "max-age=5, s-maxage=50"}, want{ok: true, fresh: 50, swr: 50, sie: 50, authOK: true}},
		{"max-age", policy{ttl: 600}, false, 200, map[string]string{"Cache-Control": "max-age=30"}, want{ok: true, fresh: 30, swr: 30, sie: 30}},
		{"expires", policy{ttl: 600}, false, 200, map[string]string{"Date": date, "Expires": now.Add(40 * time.Second).Format(http.TimeFormat)}, want{ok: true, fresh: 40, swr: 40, sie: 40}},
		{"invalid expires", policy{ttl: 600}, false, 200, map[string]string{"Expires": "0"}, want{}},
		{"age reduces freshness", policy{ttl: 600}, false, 200, map[string]string{"Cache-Control": "max-age=30", "Age": "10"}, want{ok: true, fresh: 20, swr: 20, sie: 20}},
		{"date in the past reduces freshness", policy{ttl: 600}, false, 200, map[string]string{"Cache-Control": "max-age=30", "Date": now.Add(-25 * time.Second).Format(http.TimeFormat)}, want{ok: true, fresh: 5, swr: 5, sie: 5}},
		{"already stale", policy{ttl: 600}, false, 200, map[string]string{"Cache-Control": "max-age=30", "Age": "31"}, want{}},
		{"s-maxage=0", policy{ttl: 60}, false, 200, map[string]string{"Cache-Control": "s-maxage=0"}, want{}},
		{"no-store", policy{ttl: 60}, false, 200, map[string]string{"Cache-Control": "no-store"}, want{}},
		{"private", policy{ttl: 60}, false, 200, map[string]string{"Cache-Control": "private"}, want{}},
		{"set-cookie", policy{ttl: 60}, false, 200, map[string]string{"Set-Cookie": "a=b"}, want{}},
		{"vary star", policy{ttl: 60}, false, 200, map[string]string{"Vary": "Accept, *"}, want{}},
		{"authorization without permission", policy{ttl: 60}, true, 200, map[string]string{"Cache-Control": "max-age=10"}, want{}},
		{"authorization public", policy{ttl: 60}, true, 200, map[string]string{"Cache-Control": "public"}, want{ok: true, fresh: 60, swr: 60, sie: 60, authOK: true}},
		{"authorization must-revalidate", policy{ttl: 60}, true, 200, map[string]string{"Cache-Control": "must-revalidate, max-age=10"}, want{ok: true, fresh: 10, swr: 10, sie: 10, authOK: true}},
		{"stale windows from config", policy{ttl: 60, swr: 5, sie: 7}, false, 200, nil, want{ok: true, fresh: 60, swr: 65, sie: 67}},
		{"must-revalidate forbids stale", policy{ttl: 60, swr: 5, sie: 7}, false, 200, map[string]string{"Cache-Control": "must-revalidate"}, want{ok: true, fresh: 60, swr: 60, sie: 60, authOK: true}},
		{"s-maxage forbids configured stale", policy{ttl: 60, swr: 5, sie: 7}, false, 200, map[string]string{"Cache-Control": "s-maxage=60"}, want{ok: true, fresh: 60, swr: 60, sie: 60, authOK: true}},
		{"response stale directives", policy{ttl: 60}, false, 200, map[string]string{"Cache-Control": "max-age=60, stale-while-revalidate=9, stale-if-error=11"}, want{ok: true, fresh: 60, swr: 69, sie: 71}},
		{"404 heuristically cacheable", policy{ttl: 60}, false, 404, nil, want{ok: true, fresh: 60, swr: 60, sie: 60}},
		{"302 needs explicit freshness", policy{ttl: 60}, false, 302, nil, want{}},
		{"302 with max-age", policy{ttl: 60}, false, 302, map[string]string{"Cache-Control": "max-age=10"}, want{ok: true, fresh: 10, swr: 10, sie: 10}},
		{"500 never", policy{ttl: 60}, false, 500, map[string]string{"Cache-Control": "max-age=10"}, want{}},
		{"206 never", policy{ttl: 60}, false, 206, map[string]string{"Cache-Control": "max-age=10"}, want{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.hdr {
				h.Set(k, v)
			}
			v := tc.pol.decide(tc.auth, tc.status, h, now)
			got := want{ok: v.ok, authOK: v.authOK}
			if v.ok {
				base := now.UnixNano()
				got.fresh, got.swr, got.sie = (v.freshUntil-base)/sec, (v.swrUntil-base)/sec, (v.sieUntil-base)/sec
			}
			if got != tc.want {
				t.Fatalf("decide = %+v (reason %q), want %+v", got, v.reason, tc.want)
			}
		})
	}
}

func testEntry(key string, body string, vary ...VaryField) *Entry {
	return (&Entry{
		Key: key, Status: 200, Body: []byte(body), Vary: vary,
		Header:   http.Header{"Content-Type": {"text/plain"}, "Etag": {`"x"`}},
		StoredAt: 1, FreshUntil: 1 << 62, SWRUntil: 1 << 62, SIEUntil: 1 << 62,
	}).Finish()
}

func TestEntryRoundTrip(t *testing.T) {
	e := testEntry("GET\x00http\x00h\x0080\x00/p", "hello", VaryField{"Accept-Language", []string{"en", "fr"}}, VaryField{"X-Missing", nil})
	e.AuthOK = true
	e.InitialAge = 5
	b := e.Encode()
	d, err := DecodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Key != e.Key || d.Status != 200 || string(d.Body) != "hello" || !d.AuthOK || d.InitialAge != 5 ||
		d.FreshUntil != e.FreshUntil || d.Header.Get("Content-Type") != "text/plain" || !sameVariant(d, e) || d.VariantID() != e.VariantID() {
		t.Fatalf("round trip: %+v", d)
	}
	// Any single flipped byte or truncation is detected.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := DecodeEntry(c); err == nil {
			t.Fatalf("flipped byte %d not detected", i)
		}
	}
	for n := range len(b) {
		if _, err := DecodeEntry(b[:n]); err == nil {
			t.Fatalf("truncation to %d not detected", n)
		}
	}
}

func TestEntryMatches(t *testing.T) {
	e := testEntry("k", "b", VaryField{"Accept-Language", []string{"en"}}, VaryField{"X-Absent", nil})
	cases := []struct {
		h    http.Header
		want bool
	}{
		{http.Header{"Accept-Language": {"en"}}, true},
		{http.Header{"Accept-Language": {"fr"}}, false},
		{http.Header{"Accept-Language": {"en"}, "X-Absent": {"1"}}, false},
		{http.Header{}, false},
		{http.Header{"Accept-Language": {"en", "fr"}}, false},
	}
	for _, tc := range cases {
		if got := e.Matches(tc.h); got != tc.want {
			t.Errorf("Matches(%v) = %v", tc.h, got)
		}
	}
}

func TestMemStoreLRU(t *testing.T) {
	e1 := testEntry("k1", strings.Repeat("a", 1000))
	budget := 3*e1.Size() + 10
	s := NewMemStore(budget)
	ctx := context.Background()
	for _, k := range []string{"k1", "k2", "k3"} {
		_ = s.Set(ctx, testEntry(k, strings.Repeat("a", 1000)))
	}
	// Touch k1, so k2 is the least recently used when k4 arrives.
	if s.lookup([]byte("k1"), http.Header{}, false, 2) == nil {
		t.Fatal("k1 missing")
	}
	_ = s.Set(ctx, testEntry("k4", strings.Repeat("a", 1000)))
	for k, want := range map[string]bool{"k1": true, "k2": false, "k3": true, "k4": true} {
		if got := s.lookup([]byte(k), http.Header{}, false, 2) != nil; got != want {
			t.Errorf("%s present = %v, want %v", k, got, want)
		}
	}
	if s.Bytes() > budget {
		t.Fatalf("store holds %d bytes, budget %d", s.Bytes(), budget)
	}
	// Too large for the whole budget: not stored.
	_ = s.Set(ctx, testEntry("huge", strings.Repeat("a", int(budget))))
	if s.lookup([]byte("huge"), http.Header{}, false, 2) != nil {
		t.Fatal("an entry larger than the budget was stored")
	}
	// Variants: same variant replaces, distinct variants coexist, purge drops all.
	_ = s.Set(ctx, testEntry("v", "en1", VaryField{"L", []string{"en"}}))
	_ = s.Set(ctx, testEntry("v", "en2", VaryField{"L", []string{"en"}}))
	_ = s.Set(ctx, testEntry("v", "fr", VaryField{"L", []string{"fr"}}))
	if list, _ := s.Get(ctx, "v"); len(list) != 2 {
		t.Fatalf("variants = %d, want 2", len(list))
	}
	if e := s.lookup([]byte("v"), http.Header{"L": {"en"}}, false, 2); e == nil || string(e.Body) != "en2" {
		t.Fatalf("en variant = %v", e)
	}
	if ok, _ := s.Purge(ctx, "v"); !ok {
		t.Fatal("purge found nothing")
	}
	if list, _ := s.Get(ctx, "v"); len(list) != 0 {
		t.Fatal("purge left variants")
	}
	// Expired entries are dropped at lookup.
	old := testEntry("old", "x")
	old.FreshUntil, old.SWRUntil, old.SIEUntil = 5, 5, 5
	_ = s.Set(ctx, old)
	if s.lookup([]byte("old"), http.Header{}, false, 6) != nil {
		t.Fatal("expired entry served")
	}
	// Variant count is bounded.
	s = NewMemStore(0)
	for i := range maxVariants + 5 {
		_ = s.Set(ctx, testEntry("many", "x", VaryField{"L", []string{strings.Repeat("z", i)}}))
	}
	if list, _ := s.Get(ctx, "many"); len(list) != maxVariants {
		t.Fatalf("variants = %d, want %d", len(list), maxVariants)
	}
}

func TestKey(t *testing.T) {
	// Key takes the canonical authority as the core computed it; it does not re-normalise.
	if k := Key("GET", "http", "example.com:8081", 8080, "/a?b"); k != "GET\x00http\x00example.com:8081\x008080\x00/a?b" {
		t.Fatalf("%q", k)
	}
	if Key("GET", "http", "[::1]", 80, "/") != "GET\x00http\x00[::1]\x0080\x00/" {
		t.Fatal(Key("GET", "http", "[::1]", 80, "/"))
	}
	c := &Cache{keyScheme: "http\x00", keyPort: "\x008080\x00"}
	r, _ := http.NewRequest("GET", "http://example.com:9/a%2Fb?x=1", nil)
	if got := string(c.appendKey(nil, "GET", r.Host, r)); got != Key("GET", "http", "example.com:9", 8080, "/a%2Fb?x=1") {
		t.Fatalf("appendKey = %q", got)
	}
}

func TestEtagMatch(t *testing.T) {
	for _, tc := range []struct {
		list []string
		tag  string
		want bool
	}{
		{[]string{`"a"`}, `"a"`, true},
		{[]string{`W/"a"`}, `"a"`, true},
		{[]string{`"b", "a"`}, `W/"a"`, true},
		{[]string{`*`}, `"a"`, true},
		{[]string{`"b"`}, `"a"`, false},
	} {
		if got := etagMatch(tc.list, tc.tag); got != tc.want {
			t.Errorf("etagMatch(%q, %q) = %v", tc.list, tc.tag, got)
		}
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60, public", `private="a,b", s-maxage=1`, `no-cache="`, "max-age=1e9", ",,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := parseCacheControl([]string{s})
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.staleWhileRevalidate, d.staleIfError} {
			if v < -1 || v > maxDelta {
				t.Fatalf("out of range %d for %q", v, s)
			}
		}
		pol := policy{ttl: 60, swr: 1, sie: 1}
		h := http.Header{"Cache-Control": {s}}
		v := pol.decide(false, 200, h, time.Unix(1e9, 0))
		if v.ok && (v.freshUntil <= 1e18 || v.freshUntil > time.Unix(1e9+60, 0).UnixNano()) {
			t.Fatalf("freshness out of bounds for %q: %d", s, v.freshUntil)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(testEntry("k", "body", VaryField{"A", []string{"1"}}).Encode())
	f.Add([]byte("CCE1\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes.
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
