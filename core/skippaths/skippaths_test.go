package skippaths

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestMatch(t *testing.T) {
	var d config.Diagnostics
	m := New([]string{"/login", "/public/**", "/docs/v1/**", "/__health__"}, "x.skipPaths", &d)
	if d.HasErrors() || len(d.Warnings()) != 0 {
		t.Fatalf("diagnostics: %v", d.Err())
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/login", true}, {"/login/", false}, {"/login/x", false}, {"/loginx", false},
		{"/public", true}, {"/public/", true}, {"/public/a/b", true}, {"/publicity", false},
		{"/docs/v1", true}, {"/docs/v1/x", true}, {"/docs/v2", false}, {"/docs", false},
		{"/__health__", true}, {"/", false}, {"", false},
		// non-canonical paths never borrow an exemption
		{"/public/../admin", false}, {"/public/./x", false}, {"//public/x", false},
		{"/public//x", false}, {"/public/..", false}, {"/public\\..\\admin", false},
		{"/PUBLIC/x", false},
	} {
		if got := m.Match(tc.path); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	var nilM *Matcher
	if nilM.Match("/login") || !nilM.Empty() {
		t.Error("nil matcher must match nothing")
	}
}

func TestCatchAll(t *testing.T) {
	var d config.Diagnostics
	m := New([]string{"/**"}, "p", &d)
	for _, p := range []string{"/", "/a", "/a/b/"} {
		if !m.Match(p) {
			t.Errorf("/** must match %q", p)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		list      []string
		err, warn string
	}{
		{[]string{"login"}, "error at p[0]: must start with \"/\"", ""},
		{[]string{"/a", "*.js"}, "error at p[1]", ""},
		{[]string{"/api/*"}, "", "warning at p[0]: only a trailing \"/**\" is a wildcard"},
		{[]string{"/a/*/b/**"}, "", "warning at p[0]"},
	} {
		var d config.Diagnostics
		New(tc.list, "p", &d)
		var all []string
		for _, e := range d.Errors() {
			all = append(all, e.String())
		}
		for _, w := range d.Warnings() {
			all = append(all, w.String())
		}
		text := strings.Join(all, "\n")
		if tc.err != "" && !strings.Contains(text, tc.err) {
			t.Errorf("%v: want %q in %q", tc.list, tc.err, text)
		}
		if tc.warn != "" && !strings.Contains(text, tc.warn) {
			t.Errorf("%v: want %q in %q", tc.list, tc.warn, text)
		}
		if tc.err == "" && d.HasErrors() {
			t.Errorf("%v: unexpected error %q", tc.list, text)
		}
	}
}

func TestMatchNoAlloc(t *testing.T) {
	var d config.Diagnostics
	m := New([]string{"/login", "/public/**"}, "p", &d)
	if n := testing.AllocsPerRun(100, func() { m.Match("/public/a/b") }); n != 0 {
		t.Fatalf("Match allocates %v times", n)
	}
}

// FuzzMatch checks that an exempt path is always canonical and that a match of a prefix
// entry really lies under the prefix.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/public/x", "/public/../admin", "//", "/a/./b", "/public", "/\\"} {
		f.Add(s)
	}
	var d config.Diagnostics
	m := New([]string{"/public/**", "/login"}, "p", &d)
	f.Fuzz(func(t *testing.T, p string) {
		if !m.Match(p) {
			return
		}
		if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "//") || strings.Contains(p, "\\") || strings.Contains(p, "/./") {
			t.Fatalf("non-canonical %q matched", p)
		}
		if p != "/login" && p != "/public" && !strings.HasPrefix(p, "/public/") {
			t.Fatalf("%q matched outside the entries", p)
		}
	})
}
