package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCanonicalize measures the entry canonicalisation of a request whose Host and path
// are already canonical (the common case: no allocation) and of one that needs rewriting.
func BenchmarkCanonicalize(b *testing.B) {
	g := &Generation{}
	for _, bc := range []struct{ name, target, host string }{
		{"canonical", "/api/v1/items/42?x=1", "shop.test:8080"},
		{"rewritten", "/api//v1/./items/%34%32?x=1", "SHOP.test.:8080"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, bc.target, nil)
			r.Header.Set("Connection", "keep-alive")
			u := *r.URL
			b.ReportAllocs()
			for b.Loop() {
				*r.URL = u
				r.Host = bc.host
				if _, _, ok := g.canonicalize(w, r); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}

// TestCanonicalizeRewritesTheRequest checks what the rest of the pipeline reads after entry.
func TestCanonicalizeRewritesTheRequest(t *testing.T) {
	for _, tc := range []struct {
		target, host                             string
		wantHost, wantPath, wantEscaped, wantURI string
		wantSite                                 string
	}{
		{"/a/./b/../c", "Shop.Test.", "shop.test", "/a/c", "/a/c", "/a/c", "shop.test"},
		{"/a%20b/%7e?q=%2e", "shop.test:80", "shop.test", "/a b/~", "/a%20b/~", "/a%20b/~?q=%2e", "shop.test"},
		{"/caf%c3%a9", "shop.test:8080", "shop.test:8080", "/café", "/caf%C3%A9", "/caf%C3%A9", "shop.test"},
		{"http://Other.Test/x/../y", "ignored", "other.test", "/y", "/y", "/y", "other.test"},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		r.Host = tc.host
		if r.URL.Host != "" {
			r.Host = r.URL.Host
		}
		site, _, ok := (&Generation{}).canonicalize(httptest.NewRecorder(), r)
		if !ok || site != tc.wantSite || r.Host != tc.wantHost || r.URL.Path != tc.wantPath ||
			r.URL.EscapedPath() != tc.wantEscaped || r.RequestURI != tc.wantURI || r.URL.Host != "" {
			t.Errorf("%s %s → site %q ok %v Host %q Path %q EscapedPath %q RequestURI %q URL.Host %q",
				tc.host, tc.target, site, ok, r.Host, r.URL.Path, r.URL.EscapedPath(), r.RequestURI, r.URL.Host)
		}
	}
}
