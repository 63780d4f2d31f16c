package router

import "testing"

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/exact", "/exact", true},
		{"/exact", "/exact/", false},
		{"/exact", "/exactly", false},
		{"/api/**", "/api", true},
		{"/api/**", "/api/", true},
		{"/api/**", "/api/v1/users", true},
		{"/api/**", "/apix", false},
		{"/**", "/", true},
		{"/**", "/anything/at/all", true},
		{"/a/*/c", "/a/b/c", true},
		{"/a/*/c", "/a/b/d/c", false},
		{"/a/*", "/a/b", true},
		{"/a/*", "/a/b/c", false},
		{"/files/*.js", "/files/app.js", true},
		{"/files/*.js", "/files/app.css", false},
		{"/a/**/z", "/a/z", true},
		{"/a/**/z", "/a/b/c/z", true},
		{"/a/**/z", "/a/b/c/y", false},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Match(tt.path); got != tt.want {
			t.Errorf("%s ~ %s = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
	for pattern, prefix := range map[string]string{"/api/**": "/api", "/exact": "/exact", "/a/*/c": "/a", "/**": ""} {
		g, _ := CompileGlob(pattern)
		if g.LiteralPrefix() != prefix {
			t.Errorf("LiteralPrefix(%s) = %q, want %q", pattern, g.LiteralPrefix(), prefix)
		}
	}
	if _, err := CompileGlob("no-slash"); err == nil {
		t.Error("want error for pattern without leading slash")
	}
}

func TestPrefixTableLongestWins(t *testing.T) {
	var pt PrefixTable[string]
	pt.Add("/", "root")
	pt.Add("/api", "api")
	pt.Add("/api/v2", "v2")
	tests := map[string]string{"/": "root", "/x": "root", "/api": "api", "/api/": "api", "/apix": "root", "/api/v2/u": "v2", "/api/v20": "api"}
	for path, want := range tests {
		_, got, ok := pt.Lookup(path)
		if !ok || got != want {
			t.Errorf("Lookup(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestStripPrefix(t *testing.T) {
	tests := [][3]string{{"/api/users", "/api", "/users"}, {"/api", "/api", "/"}, {"/api/", "/api", "/"}, {"/x", "/", "/x"}, {"/other", "/api", "/other"}, {"/api/x", "/api/", "/x"}}
	for _, tt := range tests {
		if got := StripPrefix(tt[0], tt[1]); got != tt[2] {
			t.Errorf("StripPrefix(%s,%s) = %s, want %s", tt[0], tt[1], got, tt[2])
		}
	}
}

func FuzzGlobMatch(f *testing.F) {
	f.Add("/api/**", "/api/x")
	f.Add("/a/*/b/**/c*", "/a/x/b/y/z/cc")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		g, err := CompileGlob(pattern)
		if err != nil {
			return
		}
		m := g.Match(path)
		if g.literal && m != (pattern == path) {
			t.Fatalf("literal pattern %q vs %q", pattern, path)
		}
		// A pattern without wildcards only matches itself; "/**" matches every rooted path.
		if pattern == "/**" && len(path) > 0 && path[0] == '/' && !m {
			t.Fatalf("/** must match %q", path)
		}
	})
}
