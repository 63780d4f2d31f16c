package static

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestEncodingQ(t *testing.T) {
	tests := []struct {
		in     []string
		br, gz int
	}{
		{nil, 0, 0},
		{[]string{"gzip, deflate, br"}, 1000, 1000},
		{[]string{"br;q=0.5, gzip"}, 500, 1000},
		{[]string{"gzip;q=0"}, 0, 0},
		{[]string{"*"}, 1000, 1000},
		{[]string{"*;q=0.1, br;q=0"}, 0, 100},
		{[]string{"BR; Q=0.9", "GZip;q=0.25"}, 900, 250},
		{[]string{"x-gzip"}, 0, 1000},
		{[]string{"identity"}, 0, 0},
		{[]string{"br;q=bogus, gzip;q=1.0"}, 0, 1000},
		{[]string{"br;q=1.5"}, 0, 0},
		{[]string{"br;level=4;q=0.3"}, 300, 0},
	}
	for _, tt := range tests {
		br, gz := encodingQ(tt.in)
		if br != tt.br || gz != tt.gz {
			t.Errorf("encodingQ(%q) = %d, %d; want %d, %d", tt.in, br, gz, tt.br, tt.gz)
		}
	}
}

func TestParseQ(t *testing.T) {
	tests := map[string]int{
		"q=1": 1000, "q=1.": 1000, "q=1.000": 1000, "q=1.0001": 0, "q=0": 0, "q=0.5": 500,
		"q=0.123": 123, "q=0.1234": 0, " q = 0.5": 1000 /* "q " is not the q parameter */, "q=": 0,
		"charset=x": 1000, "q=2": 0, "q=.5": 0,
	}
	for in, want := range tests {
		if got := parseQ(in); got != want {
			t.Errorf("parseQ(%q) = %d; want %d", in, got, want)
		}
	}
}

func TestDirsDecode(t *testing.T) {
	tests := []struct {
		name     string
		node     config.Node
		list     []string
		prefixes map[string][]string
		errPath  string
	}{
		{"string", "./dist", []string{"./dist"}, nil, ""},
		{"array", []config.Node{"./dist", "./public"}, []string{"./dist", "./public"}, nil, ""},
		{"map", map[string]config.Node{"/": "./dist", "/docs": "./docs-dist"}, nil,
			map[string][]string{"/": {"./dist"}, "/docs": {"./docs-dist"}}, ""},
		{"map of arrays", map[string]config.Node{"/": []config.Node{"a", "b"}}, nil,
			map[string][]string{"/": {"a", "b"}}, ""},
		{"empty string", "", nil, nil, "static"},
		{"number", 3.0, nil, nil, "static"},
		{"bad array item", []config.Node{"a", true}, nil, nil, "static[1]"},
		{"prefix without slash", map[string]config.Node{"docs": "x"}, nil, nil, "static.docs"},
		{"empty map", map[string]config.Node{}, nil, nil, "static"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Dirs
			diag := &config.Diagnostics{}
			config.Decode(tt.node, "static", &d, diag)
			if tt.errPath != "" {
				errs := diag.Errors()
				if len(errs) == 0 || errs[0].Path != tt.errPath {
					t.Fatalf("errors = %v; want one at %s", errs, tt.errPath)
				}
				return
			}
			if diag.HasErrors() {
				t.Fatalf("unexpected errors: %v", diag.Errors())
			}
			if strings.Join(d.List, ",") != strings.Join(tt.list, ",") {
				t.Errorf("List = %q; want %q", d.List, tt.list)
			}
			if len(d.Prefixes) != len(tt.prefixes) {
				t.Fatalf("Prefixes = %v; want %v", d.Prefixes, tt.prefixes)
			}
			for k, v := range tt.prefixes {
				if strings.Join(d.Prefixes[k], ",") != strings.Join(v, ",") {
					t.Errorf("Prefixes[%q] = %q; want %q", k, d.Prefixes[k], v)
				}
			}
		})
	}
}

func TestResolveOptions(t *testing.T) {
	yes, no := true, false
	day := config.Humantime(24 * 60 * 60 * 1e9)
	zero := config.Humantime(0)
	tests := []struct {
		name    string
		in      Options
		check   func(*settings) bool
		errPath string
	}{
		{"defaults", Options{}, func(s *settings) bool {
			return s.etag && s.lastModified && !s.preCompressed && s.cacheControl == "" &&
				s.dots == dotIgnore && len(s.index) == 1 && s.index[0] == "index.html"
		}, ""},
		{"switches", Options{ETag: &no, LastModified: &no, PreCompressed: true}, func(s *settings) bool {
			return !s.etag && !s.lastModified && s.preCompressed
		}, ""},
		{"etag on", Options{ETag: &yes}, func(s *settings) bool { return s.etag }, ""},
		{"maxAge 1d", Options{MaxAge: &day}, func(s *settings) bool { return s.cacheControl == "max-age=86400" }, ""},
		{"maxAge 0", Options{MaxAge: &zero}, func(s *settings) bool { return s.cacheControl == "max-age=0" }, ""},
		{"dotFiles allow", Options{DotFiles: "allow"}, func(s *settings) bool { return s.dots == dotAllow }, ""},
		{"dotFiles deny", Options{DotFiles: "deny"}, func(s *settings) bool { return s.dots == dotDeny }, ""},
		{"dotFiles bad", Options{DotFiles: "hide"}, nil, "staticOptions.dotFiles"},
		{"index list", Options{Index: []string{"index.htm", "default.html"}}, func(s *settings) bool {
			return len(s.index) == 2 && s.index[1] == "default.html"
		}, ""},
		{"index traversal", Options{Index: []string{"../x.html"}}, nil, "staticOptions.index[0]"},
		{"index with slash", Options{Index: []string{"a/index.html"}}, nil, "staticOptions.index[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diag := &config.Diagnostics{}
			s := resolveOptions(tt.in, "staticOptions", diag)
			if tt.errPath != "" {
				errs := diag.Errors()
				if len(errs) != 1 || errs[0].Path != tt.errPath {
					t.Fatalf("errors = %v; want one at %s", errs, tt.errPath)
				}
				return
			}
			if diag.Len() != 0 {
				t.Fatalf("unexpected diagnostics: %v", diag.Errors())
			}
			if !tt.check(s) {
				t.Errorf("settings = %+v", *s)
			}
		})
	}
}

func TestMissingDirectoryIsAWarningAndOpensLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dist")
	diag := &config.Diagnostics{}
	srv := newFileServer(Dirs{List: []string{dir}}, nil, "sites[0].static", diag, nil)
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	if diag.HasErrors() {
		t.Fatalf("errors: %v", diag.Errors())
	}
	w := diag.Warnings()
	if len(w) != 1 || w[0].Path != "sites[0].static" || !strings.Contains(w[0].Message, dir) {
		t.Fatalf("warnings = %v; want one naming %s", w, dir)
	}
	get := func() int {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/a.txt", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusNotFound {
		t.Fatalf("before the directory exists: %d", code)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.roots[0].lastTry.Store(0) // skip the retry interval instead of sleeping
	if code := get(); code != http.StatusOK {
		t.Fatalf("after the directory appears: %d", code)
	}
}

func TestNotADirectoryIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	diag := &config.Diagnostics{}
	srv := newFileServer(Dirs{List: []string{file}}, nil, "static", diag, nil)
	_ = srv.Stop(context.Background())
	if errs := diag.Errors(); len(errs) != 1 || errs[0].Path != "static" {
		t.Fatalf("errors = %v", errs)
	}
}

func TestStopClosesRootsAndServesNotFound(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newFileServer(Dirs{List: []string{dir}}, nil, "static", &config.Diagnostics{}, nil)
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	srv.roots[0].lastTry.Store(0)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/a.txt", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("after Stop: %d", rec.Code)
	}
	if srv.roots[0].r.Load() != nil {
		t.Fatal("a stopped root was reopened")
	}
}

func TestRouteDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	single := newFileServer(Dirs{List: []string{dir}}, nil, "static", &config.Diagnostics{}, nil)
	prefixed := newFileServer(Dirs{Prefixes: map[string][]string{"/": {dir}, "/docs": {dir}}}, nil, "static", &config.Diagnostics{}, nil)
	t.Cleanup(func() { _ = single.Stop(context.Background()); _ = prefixed.Stop(context.Background()) })
	r := httptest.NewRequest(http.MethodGet, "/docs/a/b.html", nil)
	for _, s := range []*FileServer{single, prefixed} {
		if n := testing.AllocsPerRun(100, func() { _ = s.Route(r) }); n != 0 {
			t.Errorf("Route allocates %v times", n)
		}
	}
	if h := prefixed.Route(r); h == nil || h.(*mount).strip != "/docs" {
		t.Fatalf("longest prefix not chosen: %#v", h)
	}
	none := newFileServer(Dirs{Prefixes: map[string][]string{"/docs": {dir}}}, nil, "static", &config.Diagnostics{}, nil)
	t.Cleanup(func() { _ = none.Stop(context.Background()) })
	if h := none.Route(httptest.NewRequest(http.MethodGet, "/docsx", nil)); h != nil {
		t.Fatal("/docs covers /docsx")
	}
}

func TestEtagOf(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	tag := etagOf(fi)
	if !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `-5"`) || strings.HasPrefix(tag, `W/`) {
		t.Fatalf("etag = %s", tag)
	}
}
