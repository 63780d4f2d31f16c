package redirects

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func ip(v int) *int { return &v }

func paths(list []config.Diagnostic) string {
	var out []string
	for _, x := range list {
		out = append(out, x.Path)
	}
	return strings.Join(out, " ")
}

func TestCompileValidation(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		errs  string
		warns string
	}{
		{"status 200 (validators_sink site 9105)", []Rule{{From: "/a", To: "/b", Status: ip(200)}}, "r[0].status", ""},
		{"status 301 (validators_sink site 9106)", []Rule{{From: "/a", To: "/b", Status: ip(301)}}, "", ""},
		{"all statuses", []Rule{{From: "/a", To: "/b", Status: ip(302)}, {From: "/c", To: "/d", Status: ip(307)}, {From: "/e", To: "/f", Status: ip(308)}}, "", ""},
		{"bad regex", []Rule{{From: "/a(", To: "/b"}}, "r[0].from", ""},
		{"empty", []Rule{{From: "", To: ""}}, "r[0].from r[0].to", ""},
		{"missing group", []Rule{{From: "/a/(.*)", To: "/b/$2"}}, "", "r[0].to"},
		{"unknown name", []Rule{{From: "/a/(?P<x>.*)", To: "/b/${y}"}}, "", "r[0].to"},
		{"CRLF in to", []Rule{{From: "/a", To: "/b\r\nSet-Cookie: x"}}, "r[0].to", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d config.Diagnostics
			Compile(tt.rules, "r", &d)
			if got := paths(d.Errors()); got != tt.errs {
				t.Fatalf("errors at %q, want %q: %v", got, tt.errs, d.Errors())
			}
			if got := paths(d.Warnings()); got != tt.warns {
				t.Fatalf("warnings at %q, want %q: %v", got, tt.warns, d.Warnings())
			}
		})
	}
}

func TestDecodeRequiresFromAndTo(t *testing.T) {
	var d config.Diagnostics
	var rules []Rule
	config.Decode([]config.Node{map[string]config.Node{"to": "/x"}, map[string]config.Node{"from": "/x"}}, "redirects", &rules, &d)
	if got := paths(d.Errors()); got != "redirects[0].from redirects[1].to" {
		t.Fatalf("errors at %q", got)
	}
}

func TestRedirects(t *testing.T) {
	rules := []Rule{
		{From: "/old/(.*)", To: "/new/$1", Status: ip(308)},
		{From: "^/docs/(?P<page>[a-z]+)$", To: "https://docs.example.com/${page}.html"},
		{From: "/blog/:year/:slug", To: "/posts/:slug?year=:year", Status: ip(302)},
		{From: "/u/:id", To: "/users/$1"},
		{From: "/a", To: "/b"},
		{From: "/a.*", To: "/never"}, // /a is taken by the rule above: first match wins
		{From: "/x/(\\d+)/(\\d+)", To: "/y/${2}0/$1$$"},
	}
	var d config.Diagnostics
	in, ok := Compile(rules, "r", &d)
	if !ok || d.HasErrors() {
		t.Fatal(d.Errors())
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := in.Wrap(next)
	tests := []struct {
		target string
		code   int
		loc    string
	}{
		{"/old/a/b.html", 308, "/new/a/b.html"},
		{"/old/x?q=1&r=2", 308, "/new/x?q=1&r=2"},
		{"/older/x", 299, ""}, // from matches the whole path, not a substring
		{"/docs/intro", 301, "https://docs.example.com/intro.html"},
		{"/docs/intro?v=2", 301, "https://docs.example.com/intro.html?v=2"},
		{"/docs/Intro", 299, ""},
		{"/blog/2024/hello-world", 302, "/posts/hello-world?year=2024"},
		{"/blog/2024/hello-world?ref=rss", 302, "/posts/hello-world?year=2024&ref=rss"},
		{"/blog/2024/a/b", 299, ""}, // :param is one segment
		{"/u/42", 301, "/users/42"},
		{"/a", 301, "/b"},
		{"/ab", 301, "/never"},
		{"/x/1/2", 301, "/y/20/1$"},
		{"/old/caf%C3%A9", 308, "/new/caf%C3%A9"}, // matched against the escaped path
		{"/elsewhere", 299, ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tt.target, nil))
		if rec.Code != tt.code || rec.Header().Get("Location") != tt.loc {
			t.Errorf("%s = %d %q, want %d %q", tt.target, rec.Code, rec.Header().Get("Location"), tt.code, tt.loc)
		}
	}
}

func TestParamPatternDetection(t *testing.T) {
	for from, want := range map[string]bool{
		"/blog/:slug": true, "/a/:b/c": true, "/a:b": false, "/a/(.*)": false, "^/x/:y": false, "/a/:1": false, "/plain": false,
	} {
		if _, got := paramPattern(from); got != want {
			t.Errorf("paramPattern(%q) = %v", from, got)
		}
	}
	if got := paramTarget("https://h:8080/p/:slug/:id_2x"); got != "https://h:8080/p/${slug}/${id_2x}" {
		t.Errorf("paramTarget = %q", got)
	}
}

// FuzzTemplate checks the template compiler against regexp.Expand, which defines the syntax.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/new/$1", "${1}x", "$name", "$$", "$", "${", "${}", "a$1b${2}c$$d", "$x$1${y}"} {
		f.Add(s, "/a/bc/d")
	}
	re := regexp.MustCompile(`^(?:/(?P<x>[^/]*)/(?P<y>[^/]*)/?(.*))$`)
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		m := re.FindStringSubmatchIndex(path)
		if m == nil {
			return
		}
		tp, _ := compileTemplate(tmpl, re)
		got := tp.expand(path, m, "")
		want := string(re.ExpandString(nil, tmpl, path, m))
		if got != want {
			t.Fatalf("template %q on %q = %q, regexp.Expand gives %q", tmpl, path, got, want)
		}
	})
}

func TestOneLeadingSlash(t *testing.T) {
	cases := map[string]string{
		"/a":              "/a",
		"/":               "/",
		"":                "",
		"//evil.example":  "/evil.example",
		"/\\evil.example": "/evil.example",
		"/\\/\\evil/x//y": "/evil/x//y",
		"///":             "/",
		"a//b":            "a//b",
		"https://x//y":    "https://x//y",
	}
	for in, want := range cases {
		if got := oneLeadingSlash(in); got != want {
			t.Errorf("oneLeadingSlash(%q) = %q, want %q", in, got, want)
		}
	}
}
