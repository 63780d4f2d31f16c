package h1engine

import (
	"net/url"
	"reflect"
	"testing"
)

// targetSeeds are request targets for TestParseOrigin and FuzzParseOrigin: the fast path's
// cases and the ones it must leave to net/url.
var targetSeeds = []string{
	"/", "/a/b.c", "/bench?x=1", "/a?", "/a??", "/a?b?", "/a?b?c", "/?", "//x", "///x",
	"/a:b@c;d=e,f+g$h&i", "/a%20b", "/a%2Fb", "/a b", "/a!b", "/a(b)", "/a*b", "/a'b",
	"/a\"b", "/é", "/a?é", "/a?b c", "/a?\x7f", "/a\x00", "/a?\x01", "*", "", "a/b",
	"http://h/p?q", "/a#f", "/a?b#f", "/~u/-_.",
}

// TestParseOrigin: where parseOrigin answers, its URL is url.ParseRequestURI's; the
// common origin-form targets take the fast path.
func TestParseOrigin(t *testing.T) {
	for _, target := range targetSeeds {
		checkParseOrigin(t, target)
	}
	for _, target := range []string{"/", "/bench?x=1", "/a?", "/a/b.c?x=%20&y=/"} {
		var u url.URL
		if !parseOrigin(&u, target) {
			t.Errorf("%q: not taken by the fast path", target)
		}
	}
}

func checkParseOrigin(t *testing.T, target string) {
	var u url.URL
	if !parseOrigin(&u, target) {
		return
	}
	want, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("%q: fast path accepted what net/url refuses: %v", target, err)
	}
	if !reflect.DeepEqual(&u, want) {
		t.Fatalf("%q: fast path %#v, net/url %#v", target, u, *want)
	}
}

// FuzzParseOrigin: parseOrigin never disagrees with url.ParseRequestURI.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range targetSeeds {
		f.Add(s)
	}
	f.Fuzz(checkParseOrigin)
}
