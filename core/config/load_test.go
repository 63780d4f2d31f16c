package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		src    string
		shape  Shape
		sites  int
		global bool
	}{
		{"full yaml", FormatYAML, "global:\n  workers: 2\nsites:\n  - port: 8080\n  - port: 8081\n", ShapeFull, 2, true},
		{"sites yaml", FormatYAML, "- port: 8080\n- host: a\n", ShapeSites, 2, false},
		{"single yaml", FormatYAML, "port: 8080\nproxy: http://x\n", ShapeSingle, 1, false},
		{"full json", FormatJSON, `{"sites":[{"port":1}]}`, ShapeFull, 1, false},
		{"sites json", FormatJSON, `[{"port":1},{"port":2},{"port":3}]`, ShapeSites, 3, false},
		{"single json", FormatJSON, `{"port":1}`, ShapeSingle, 1, false},
		{"empty object", FormatYAML, "{}", ShapeSingle, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.src), tt.format, nil)
			if err != nil {
				t.Fatal(err)
			}
			if doc.Shape != tt.shape || len(doc.Sites) != tt.sites {
				t.Fatalf("shape %v sites %d, want %v %d", doc.Shape, len(doc.Sites), tt.shape, tt.sites)
			}
			if tt.global && doc.Global["workers"] == nil {
				t.Fatalf("global not read: %v", doc.Global)
			}
		})
	}
}

func TestParseKeepsDottedKeys(t *testing.T) {
	doc, err := Parse([]byte("proxy:\n  /v1.2/api: http://a\n  /x: http://b\n"), FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := doc.Sites[0]["proxy"].(map[string]Node)
	if m["/v1.2/api"] != "http://a" || len(m) != 2 {
		t.Fatalf("dotted key split: %#v", m)
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{"sites: 3", "global: [1]\nsites: []", "port: [\n", "42", `"str"`, "- 1\n- 2"} {
		if _, err := Parse([]byte(src), FormatYAML, nil); err == nil {
			t.Errorf("Parse(%q): want error", src)
		}
	}
	if _, err := Parse([]byte(`{"port":`), FormatJSON, nil); err == nil {
		t.Error("want JSON syntax error")
	}
}

// TestParseEmptyFileIsAnError: a file with no content is ErrEmptyConfig, while an explicit
// empty site list (or a global-only file) still parses to zero sites.
func TestParseEmptyFileIsAnError(t *testing.T) {
	tests := []struct {
		src    string
		format Format
		empty  bool
	}{
		{"", FormatYAML, true},
		{"  \n\n", FormatYAML, true},
		{"# only a comment\n# another\n", FormatYAML, true},
		{"", FormatJSON, true},
		{"null", FormatJSON, true},
		{"sites: []\n", FormatYAML, false},
		{"global: {}\nsites: []\n", FormatYAML, false},
		{"[]", FormatJSON, false},
	}
	for _, tt := range tests {
		doc, err := Parse([]byte(tt.src), tt.format, nil)
		if got := errors.Is(err, ErrEmptyConfig); got != tt.empty {
			t.Errorf("Parse(%q): err %v, want ErrEmptyConfig %v", tt.src, err, tt.empty)
		}
		if !tt.empty && (err != nil || len(doc.Sites) != 0) {
			t.Errorf("Parse(%q): %v, %v; want zero sites", tt.src, doc, err)
		}
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	if _, err := Discover(dir); err == nil {
		t.Fatal("want error in empty dir")
	}
	for _, name := range []string{"conduit.yml", "conduit.yaml", "conduit.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Discover(dir)
		if err != nil || filepath.Base(got) != name {
			t.Fatalf("after adding %s: got %q, %v", name, got, err)
		}
	}
}

// TestSubstituteAfterParsing pins that $VAR values are inserted into parsed scalars: YAML
// and JSON syntax in a value is kept byte for byte and never changes the document, an
// unquoted whole reference keeps the type its value spells, and the rest of the rules
// ($$, ${}, unset) are unchanged.
func TestSubstituteAfterParsing(t *testing.T) {
	env := map[string]string{
		"TOK":   "s3cret #tail",
		"ALIAS": "*anchor",
		"TAG":   "!!int 5",
		"NL":    "line1\nline2: x\n- y",
		"Q":     `"'\`,
		"FLOW":  "{a: 1}, [2]",
		"KV":    "k: v",
		"PORT":  "8080",
		"RATIO": "0.5",
		"ON":    "true",
		"EMPTY": "",
		"USER":  "alice",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		name, src string
		format    Format
		key       string
		want      Node
	}{
		{"comment marker", "x: $TOK\n", FormatYAML, "x", "s3cret #tail"},
		{"comment marker quoted", "x: \"$TOK\"\n", FormatYAML, "x", "s3cret #tail"},
		{"alias", "a: &anchor 1\nx: $ALIAS\n", FormatYAML, "x", "*anchor"},
		{"tag", "x: $TAG\n", FormatYAML, "x", "!!int 5"},
		{"newlines", "x: $NL\n", FormatYAML, "x", "line1\nline2: x\n- y"},
		{"quotes", "x: '$Q'\n", FormatYAML, "x", `"'\`},
		{"flow", "x: $FLOW\n", FormatYAML, "x", "{a: 1}, [2]"},
		{"colon", "x: $KV\n", FormatYAML, "x", "k: v"},
		{"in a list", "x: [$TOK, b]\n", FormatYAML, "x", []Node{"s3cret #tail", "b"}},
		{"in a block string", "x: |\n  pre $TOK\n", FormatYAML, "x", "pre s3cret #tail\n"},
		{"unquoted number", "x: $PORT\n", FormatYAML, "x", 8080},
		{"unquoted decimal", "x: $RATIO\n", FormatYAML, "x", 0.5},
		{"unquoted bool", "x: $ON\n", FormatYAML, "x", true},
		{"quoted number stays a string", "x: \"$PORT\"\n", FormatYAML, "x", "8080"},
		{"number inside text", "x: $PORT-$PORT\n", FormatYAML, "x", "8080-8080"},
		{"empty value", "x: $EMPTY\n", FormatYAML, "x", ""},
		{"unset stays", "x: $NOPE\n", FormatYAML, "x", "$NOPE"},
		{"dollar dollar", "x: $$PORT\n", FormatYAML, "x", "$$PORT"},
		{"braces", "x: ${PORT}\n", FormatYAML, "x", "${PORT}"},
		{"key", "users: { $USER: $TOK }\n", FormatYAML, "users", map[string]Node{"alice": "s3cret #tail"}},
		{"json", `{"x": "$TOK"}`, FormatJSON, "x", "s3cret #tail"},
		{"json newline value", `{"x": "$NL"}`, FormatJSON, "x", "line1\nline2: x\n- y"},
		{"json quotes", `{"x": "$Q"}`, FormatJSON, "x", `"'\`},
		{"json key", `{"users": {"$USER": "$TOK"}}`, FormatJSON, "users", map[string]Node{"alice": "s3cret #tail"}},
		{"json bare number", `{"x": $PORT}`, FormatJSON, "x", 8080.0},
		{"json bare bool", `{"x": [$ON, $RATIO]}`, FormatJSON, "x", []Node{true, 0.5}},
		{"json bare string", `{"x": $TOK}`, FormatJSON, "x", "s3cret #tail"},
		{"json bare unset", `{"x": $NOPE}`, FormatJSON, "x", "$NOPE"},
		{"json bare key", `{"users": {$USER: $PORT}}`, FormatJSON, "users", map[string]Node{"alice": 8080.0}},
		{"json bare next to a string with $", `{"a": "$$x\"$", "x": $PORT}`, FormatJSON, "x", 8080.0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := Parse([]byte(tc.src), tc.format, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.Sites[0][tc.key]; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	// Two keys that only collide after substitution are an error that does not print them.
	for _, src := range []string{"users: { $USER: a, alice: b }\n", `{"users": {"$USER": "a", "alice": "b"}}`} {
		format := FormatYAML
		if src[0] == '{' {
			format = FormatJSON
		}
		if _, err := Parse([]byte(src), format, lookup); err == nil || strings.Contains(err.Error(), "alice") {
			t.Errorf("%s: %v, want an error that does not print the key", src, err)
		}
	}
}

func TestLoadFileSubstitutesAfterParsing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`{"basicAuth":{"users":{"a":"$PASS"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	doc, err := LoadFile(p, func(k string) (string, bool) { return `p"w`, k == "PASS" })
	if err != nil {
		t.Fatal(err)
	}
	users := doc.Sites[0]["basicAuth"].(map[string]Node)["users"].(map[string]Node)
	if users["a"] != `p"w` {
		t.Fatalf("got %#v", users["a"])
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../../shared/compat/*")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b, strings.HasSuffix(s, ".json"))
		}
	}
	f.Add([]byte("sites:\n - port: 1\n"), false)
	f.Add([]byte(`[{"proxy":{"/a":["http://x"]}}]`), true)
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		format := FormatYAML
		if isJSON {
			format = FormatJSON
		}
		doc, err := Parse(data, format, os.LookupEnv)
		if err == nil && doc == nil {
			t.Fatal("nil document without error")
		}
		if err == nil {
			// Decoding arbitrary sites into a broad struct must not panic.
			for i, s := range doc.Sites {
				var d Diagnostics
				var v struct {
					Port  int               `json:"port"`
					Host  string            `json:"host"`
					Proxy any               `json:"proxy"`
					Hdr   map[string]string `json:"headers"`
					List  []uint16          `json:"list"`
				}
				Decode(s, doc.SitePath(i), &v, &d)
			}
		}
	})
}
