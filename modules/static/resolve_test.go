package static

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		in   string
		rel  string
		dot  bool
		want verdict
	}{
		{"/", "", false, pathOK},
		{"", "", false, pathOK},
		{"/index.html", "index.html", false, pathOK},
		{"/a/b/c.js", "a/b/c.js", false, pathOK},
		{"/a/b/", "a/b", false, pathOK},
		{"a/b", "a/b", false, pathOK},
		{"//etc/passwd", "etc/passwd", false, pathOK},
		{"/a//b", "a/b", false, pathOK},
		{"/a/./b", "a/b", false, pathOK},
		{"/./", "", false, pathOK},
		{"/a/b//", "a/b", false, pathOK},
		{"/.env", ".env", true, pathOK},
		{"/a/.git/config", "a/.git/config", true, pathOK},
		{"/.well-known/x", ".well-known/x", true, pathOK},
		{"/...", "...", true, pathOK},
		{"/a..b", "a..b", false, pathOK},
		{"/%2e%2e/x", "%2e%2e/x", false, pathOK}, // already decoded once: a literal name
		{"/..", "", false, pathBad},
		{"/../etc/passwd", "", false, pathBad},
		{"/a/../../b", "", false, pathBad},
		{"/a/..", "", false, pathBad},
		{"..", "", false, pathBad},
		{"/..\\secret", "", false, pathBad},
		{"/a\\b", "", false, pathBad},
		{"/a\x00.txt", "", false, pathBad},
	}
	for _, tt := range tests {
		rel, dot, v := resolve(tt.in)
		if v != tt.want || (v == pathOK && (rel != tt.rel || dot != tt.dot)) {
			t.Errorf("resolve(%q) = %q, %v, %v; want %q, %v, %v", tt.in, rel, dot, v, tt.rel, tt.dot, tt.want)
		}
	}
}

func TestResolveCleanPathDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/assets/app.js", "/", "/docs/"} {
		if n := testing.AllocsPerRun(100, func() { _, _, _ = resolve(p) }); n != 0 {
			t.Errorf("resolve(%q) allocates %v times", p, n)
		}
	}
}

func TestHasEncodedSlash(t *testing.T) {
	tests := map[string]bool{
		"/a%2fb": true, "/a%2Fb": true, "/..%5c": false, "/..%5C": false,
		"/a%252fb": false, "/a/b": false, "/%2": false, "/%": false, "/%2e%2e": false,
	}
	for in, want := range tests {
		if got := hasEncodedSlash(in); got != want {
			t.Errorf("hasEncodedSlash(%q) = %v", in, got)
		}
	}
}

// FuzzResolve checks that resolve never returns a name that leaves the root: no absolute
// path, no ".." segment, no backslash or NUL, and nothing that filepath.Clean would change.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/../x", "//x", "/a/./../b", "/.env", "/a\\..\\b", "/\x00", "/%2e%2e/", "..", "/a/b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, dot, v := resolve(p)
		if v != pathOK {
			if rel != "" {
				t.Fatalf("resolve(%q) rejected the path but returned %q", p, rel)
			}
			return
		}
		if rel == "" {
			return
		}
		if !filepath.IsLocal(rel) {
			t.Fatalf("resolve(%q) = %q: not local", p, rel)
		}
		if filepath.Clean(rel) != rel || strings.HasPrefix(rel, "/") {
			t.Fatalf("resolve(%q) = %q: not clean", p, rel)
		}
		for seg := range strings.SplitSeq(rel, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("resolve(%q) = %q: bad segment %q", p, rel, seg)
			}
			if seg[0] == '.' && !dot {
				t.Fatalf("resolve(%q) = %q: dot segment not reported", p, rel)
			}
		}
		if strings.ContainsAny(rel, "\\\x00") {
			t.Fatalf("resolve(%q) = %q: backslash or NUL", p, rel)
		}
		// The same name joined to a root stays below it.
		root := "/srv/root"
		joined := filepath.Join(root, rel)
		if !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("resolve(%q) = %q escapes: %q", p, rel, joined)
		}
	})
}
