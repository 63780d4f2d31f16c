package fallback

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestAcceptNeedle(t *testing.T) {
	tests := map[string]string{
		"html": "text/html", "json": "application/json", "text": "text/", "image": "image/",
		"HTML": "text/html", "xml": "xml", "Application/PDF": "application/pdf", " ": "",
	}
	for key, want := range tests {
		if got := acceptNeedle(key); got != want {
			t.Errorf("acceptNeedle(%q) = %q; want %q", key, got, want)
		}
	}
}

func TestIndexFold(t *testing.T) {
	tests := []struct {
		s, needle string
		want      int
	}{
		{"text/html,application/json", "application/json", 10},
		{"TEXT/HTML", "text/html", 0},
		{"image/webp", "text/", -1},
		{"", "x", -1},
		{"ab", "abc", -1},
	}
	for _, tt := range tests {
		if got := indexFold(tt.s, tt.needle); got != tt.want {
			t.Errorf("indexFold(%q, %q) = %d; want %d", tt.s, tt.needle, got, tt.want)
		}
	}
}

func status(n int) *int { return &n }

func TestCompileValidation(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "index.html")
	if err := os.WriteFile(existing, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      Config
		errPaths []string
		warnings []string
	}{
		{"status 99", Config{Status: status(99)}, []string{"fallback.status"}, nil},
		{"status 600", Config{Status: status(600)}, []string{"fallback.status"}, nil},
		{"status 100 warns", Config{Status: status(100)}, nil, []string{"fallback.status"}},
		{"status 599", Config{Status: status(599)}, nil, nil},
		{"byAccept status", Config{ByAccept: map[string]RuleConfig{"json": {Status: status(1000)}}}, []string{"fallback.byAccept.json.status"}, nil},
		{"missing file warns", Config{File: filepath.Join(dir, "nope.html")}, nil, []string{"fallback.file"}},
		{"file is a directory", Config{File: dir}, []string{"fallback.file"}, nil},
		{"file and body", Config{File: existing, Body: "x"}, nil, []string{"fallback.body"}},
		{"bad header", Config{Headers: map[string]string{"X-A": "a\r\nInjected: 1"}}, []string{"fallback.headers.X-A"}, nil},
		{"bad header name", Config{Headers: map[string]string{"X A": "a"}}, []string{"fallback.headers.X A"}, nil},
		{"empty key", Config{ByAccept: map[string]RuleConfig{"": {}}}, nil, []string{"fallback.byAccept."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &config.Diagnostics{}
			New(tt.cfg, "fallback", d, nil)
			var errs, warns []string
			for _, e := range d.Errors() {
				errs = append(errs, e.Path)
			}
			for _, w := range d.Warnings() {
				warns = append(warns, w.Path)
			}
			if strings.Join(errs, ",") != strings.Join(tt.errPaths, ",") {
				t.Errorf("errors at %q; want %q (%v)", errs, tt.errPaths, d.Errors())
			}
			if strings.Join(warns, ",") != strings.Join(tt.warnings, ",") {
				t.Errorf("warnings at %q; want %q (%v)", warns, tt.warnings, d.Warnings())
			}
		})
	}
}

func TestPick(t *testing.T) {
	h := New(Config{
		Status: status(404), Body: "base",
		ByAccept: map[string]RuleConfig{
			"html":  {Body: "html"},
			"json":  {Body: "json"},
			"image": {Body: "image"},
			"text":  {Body: "text"},
			"xml":   {Body: "xml"},
		},
	}, "fallback", &config.Diagnostics{}, nil)
	tests := []struct {
		accept []string
		want   string
	}{
		{nil, "base"},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}, "html"},
		{[]string{"application/json"}, "json"},
		{[]string{"application/json, text/plain, */*"}, "json"},
		{[]string{"image/avif,image/webp,*/*"}, "image"},
		{[]string{"text/plain"}, "text"},
		{[]string{"text/css,*/*;q=0.1"}, "text"},
		{[]string{"application/xml"}, "xml"},
		{[]string{"APPLICATION/JSON"}, "json"},
		{[]string{"application/octet-stream"}, "base"},
		{[]string{"application/pdf", "application/json"}, "json"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, a := range tt.accept {
			r.Header.Add("Accept", a)
		}
		got := h.pick(r)
		if got == nil || string(got.body) != tt.want {
			t.Errorf("Accept %q picked %v; want %q", tt.accept, got, tt.want)
		}
	}
	// "*" is tried after every named key and before the top level.
	star := New(Config{Body: "base", ByAccept: map[string]RuleConfig{"json": {Body: "json"}, "*": {Body: "star"}}}, "fallback", &config.Diagnostics{}, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/html")
	if got := star.pick(r); string(got.body) != "star" {
		t.Errorf("star rule not chosen: %q", got.body)
	}
	// Only byAccept: an unmatched request has no rule (the core's bare 404).
	only := New(Config{ByAccept: map[string]RuleConfig{"json": {Body: "json"}}}, "fallback", &config.Diagnostics{}, nil)
	if got := only.pick(r); got != nil {
		t.Errorf("byAccept-only fallback answered %q for an unmatched Accept", got.body)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	h := New(Config{ByAccept: map[string]RuleConfig{"html": {}, "json": {}, "image": {}}}, "fallback", &config.Diagnostics{}, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8")
	if n := testing.AllocsPerRun(100, func() { _ = h.pick(r) }); n != 0 {
		t.Fatalf("pick allocates %v times", n)
	}
}

func TestBodies(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		code        int
		ctype, body string
	}{
		{"empty", Config{}, 200, "", ""},
		{"status only", Config{Status: status(404)}, 404, "", ""},
		{"text", Config{Status: status(404), Body: "Not Found"}, 404, "text/plain; charset=utf-8", "Not Found"},
		{"html string", Config{Body: "<!doctype html><h1>Gone</h1>"}, 200, "text/html; charset=utf-8", "<!doctype html><h1>Gone</h1>"},
		{"json object", Config{Status: status(404), Body: map[string]config.Node{"error": "Not Found", "status": 404.0}}, 404, "application/json", `{"error":"Not Found","status":404}`},
		{"json array", Config{Body: []config.Node{"a", true}}, 200, "application/json", `["a",true]`},
		{"header overrides type", Config{Body: "x", Headers: map[string]string{"content-type": "text/x-custom", "X-Fallback": "1"}}, 200, "text/x-custom", "x"},
		{"204 has no body", Config{Status: status(204), Body: "ignored"}, 204, "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &config.Diagnostics{}
			h := New(tt.cfg, "fallback", d, nil)
			if d.HasErrors() {
				t.Fatal(d.Err())
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			if rec.Code != tt.code || rec.Header().Get("Content-Type") != tt.ctype || rec.Body.String() != tt.body {
				t.Fatalf("= %d %q %q; want %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), tt.code, tt.ctype, tt.body)
			}
			if tt.cfg.Headers["X-Fallback"] != "" && rec.Header().Get("X-Fallback") != "1" {
				t.Errorf("headers not applied: %v", rec.Header())
			}
		})
	}
}
