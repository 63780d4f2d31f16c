package config

import (
	"os"
	"path/filepath"
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
		{"empty", FormatYAML, "", ShapeSingle, 1, false},
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

func TestLoadFileSubstitutesBeforeParsing(t *testing.T) {
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
