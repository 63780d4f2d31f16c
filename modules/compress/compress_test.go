package compress

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestNegotiate(t *testing.T) {
	all := []int{0, 1, 2, 3} // br, zstd, gzip, deflate
	tests := []struct {
		ae    string
		prefs []int
		want  string
	}{
		{"", all, ""},
		{"gzip", all, "gzip"},
		{"gzip, deflate, br", all, "br"},
		{"gzip, deflate, br, zstd", all, "br"},
		{"gzip, deflate, br, zstd", []int{2, 0}, "gzip"},
		{"br;q=0.5, gzip", all, "gzip"},
		{"br;q=0, gzip;q=0.1", all, "gzip"},
		{"br;q=0", all, ""},
		{"*", all, "br"},
		{"*;q=0.2, gzip;q=0.1", all, "br"},
		{"*;q=0", all, ""},
		{"identity", all, ""},
		{"x-gzip", all, "gzip"},
		{"GZIP;Q=0.9", all, "gzip"},
		{"gzip;q=1.5", all, ""},       // malformed q: item ignored
		{"gzip;q=abc, br", all, "br"}, // malformed q: item ignored
		{"gzip;q=0.999, br;q=1.000", all, "br"},
		{"gzip ; q=0.8 , zstd ; q=0.9", all, "zstd"},
		{"deflate", all, "deflate"},
		{"deflate", []int{0, 2}, ""},
		{",,, ,gzip", all, "gzip"},
		{"zstd;foo=bar;q=0.5, gzip;q=0.4", all, "zstd"},
	}
	for _, tt := range tests {
		got := negotiate([]string{tt.ae}, tt.prefs)
		name := ""
		if got >= 0 {
			name = codings[got]
		}
		if name != tt.want {
			t.Errorf("negotiate(%q, %v) = %q, want %q", tt.ae, tt.prefs, name, tt.want)
		}
	}
	// Several field lines are one list.
	if got := negotiate([]string{"br;q=0", "gzip"}, all); got != 2 {
		t.Errorf("two lines = %d", got)
	}
}

func TestNegotiateDoesNotAllocate(t *testing.T) {
	v := []string{"gzip;q=0.8, deflate, br;q=0.9, zstd;q=0.85, *;q=0.1"}
	prefs := []int{0, 1, 2, 3}
	if n := testing.AllocsPerRun(100, func() { negotiate(v, prefs) }); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

func TestParseQValue(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1", 1000, true}, {"0", 0, true}, {"0.5", 500, true}, {"0.123", 123, true}, {"1.000", 1000, true},
		{"1.", 1000, true}, {"0.", 0, true},
		{"1.001", 0, false}, {"0.1234", 0, false}, {"2", 0, false}, {"", 0, false}, {".5", 0, false}, {"0,5", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseQValue(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseQValue(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=0.5, gzip", "*;q=0", "zstd;q=1.000, x-gzip;q=0.001", ";;;,,q=", "gzip;q="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		got := negotiate([]string{ae}, []int{0, 1, 2, 3})
		if got < -1 || got >= len(codings) {
			t.Fatalf("negotiate(%q) = %d", ae, got)
		}
		// A coding the header never names (and no "*") is never chosen.
		lower := strings.ToLower(ae)
		if got >= 0 && !strings.Contains(lower, "*") && !strings.Contains(lower, codings[got]) {
			t.Fatalf("negotiate(%q) chose unnamed %s", ae, codings[got])
		}
	})
}

func TestConfigDecode(t *testing.T) {
	tests := []struct {
		name    string
		node    config.Node
		errs    []string // expected error paths
		enabled bool
		check   func(t *testing.T, c Config)
	}{
		{name: "true", node: true, enabled: true, check: func(t *testing.T, c Config) {
			if c.Level != 6 || c.MinBytes != 1024 || strings.Join(c.Algorithms, ",") != "br,zstd,gzip" || len(c.Types) != 6 {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "false", node: false},
		{name: "object", node: map[string]config.Node{"algorithms": []config.Node{"gzip", "brotli"}, "level": 9.0, "minBytes": 0.0, "types": []config.Node{"*"}}, enabled: true,
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Algorithms, ",") != "gzip,br" || c.Level != 9 || c.MinBytes != 0 || !c.AllTypes {
					t.Errorf("= %+v", c)
				}
			}},
		{name: "bad algorithm", node: map[string]config.Node{"algorithms": []config.Node{"lz4"}}, enabled: true, errs: []string{"c.algorithms[0]"}},
		{name: "level too high", node: map[string]config.Node{"level": 10.0}, enabled: true, errs: []string{"c.level"}},
		{name: "negative minBytes", node: map[string]config.Node{"minBytes": -1.0}, enabled: true, errs: []string{"c.minBytes"}},
		{name: "bad type", node: map[string]config.Node{"types": []config.Node{"text/html, text/css"}}, enabled: true, errs: []string{"c.types[0]"}},
		{name: "string", node: "gzip", errs: []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d config.Diagnostics
			var c Config
			config.Decode(tt.node, "c", &c, &d)
			var got []string
			for _, e := range d.Errors() {
				got = append(got, e.Path)
			}
			if strings.Join(got, " ") != strings.Join(tt.errs, " ") {
				t.Fatalf("errors at %q, want %q (%v)", got, tt.errs, d.Errors())
			}
			if c.Enabled != tt.enabled {
				t.Fatalf("enabled = %v", c.Enabled)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestTypeOK(t *testing.T) {
	c := Config{Types: defaultTypes}
	for ct, want := range map[string]bool{
		"text/html; charset=utf-8": true, "TEXT/CSS": true, "application/json": true, "application/javascript": true,
		"image/svg+xml": true, "application/xhtml+xml": true, "image/png": false, "application/octet-stream": false,
		"text/event-stream": false, "": false, "application/jsonx": true,
	} {
		if got := c.typeOK(ct); got != want {
			t.Errorf("typeOK(%q) = %v", ct, got)
		}
	}
	all := Config{AllTypes: true}
	if !all.typeOK("image/png") || all.typeOK("text/event-stream") {
		t.Error("AllTypes")
	}
	sse := Config{Types: []string{"text/event-stream"}}
	if !sse.typeOK("text/event-stream") {
		t.Error("an explicitly listed text/event-stream is compressed")
	}
}
