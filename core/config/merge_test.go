package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFiles writes name → content into dir and returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFilesMergesTheThreeShapes(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"conf.d/10-base.yaml":   "global:\n  workers: 2\n  admin: { bind: \"127.0.0.1:2019\" }\nsites:\n  - port: 8080\n",
		"conf.d/20-list.json":   `[{"port": 8081}, {"port": 8082, "host": "b.example"}]`,
		"conf.d/30-single.yml":  "port: 8083\nproxy: http://x\n",
		"conf.d/40-admin.yaml":  "global:\n  admin: { token: \"$TOKEN\" }\nsites: []\n",
		"conf.d/.hidden.yaml":   "port: 1\n",
		"conf.d/notes.txt":      "not config",
		"conf.d/sub/deep.yaml":  "port: 2\n",
		"extra.yaml":            "- port: 9000\n",
		"conf.d/50-empty-sites": "ignored: no extension",
	})
	lookup := func(n string) (string, bool) {
		if n == "TOKEN" {
			return "a-token-of-some-length", true
		}
		return "", false
	}
	doc, err := LoadFiles([]string{filepath.Join(dir, "conf.d"), filepath.Join(dir, "extra.yaml")}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	var ports []any
	for _, s := range doc.Sites {
		ports = append(ports, s["port"])
	}
	if want := []any{8080, 8081.0, 8082.0, 8083, 9000}; !reflect.DeepEqual(ports, want) {
		t.Fatalf("ports %v, want %v", ports, want)
	}
	admin := doc.Global["admin"].(map[string]Node)
	if admin["bind"] != "127.0.0.1:2019" || admin["token"] != "a-token-of-some-length" || doc.Global["workers"] != 2 {
		t.Fatalf("global not merged key by key: %#v", doc.Global)
	}
	if len(doc.Files) != 5 || !doc.Substitutions.FromEnvironment("a-token-of-some-length") {
		t.Fatalf("files %v; substitutions not kept", doc.Files)
	}
	tests := []struct{ path, file, local string }{
		{"sites[0].port", "10-base.yaml", "sites[0].port"},
		{"sites[2].host", "20-list.json", "sites[1].host"},
		{"sites[3].proxy", "30-single.yml", "proxy"},
		{"sites[3]", "30-single.yml", ""},
		{"sites[4]", "extra.yaml", "sites[0]"},
		{"global.admin.token", "40-admin.yaml", "global.admin.token"},
		{"global.admin.bind", "10-base.yaml", "global.admin.bind"},
		{"global.admin", "10-base.yaml and 40-admin.yaml", "global.admin"},
		{"sites", "", "sites"},
		{"global.admin.tls.cert", "10-base.yaml and 40-admin.yaml", "global.admin.tls.cert"},
		{"global.metrics", "", "global.metrics"},
	}
	for _, tt := range tests {
		file, local := doc.Origins.Locate(tt.path)
		first := strings.Split(file, " and ")[0]
		if first != "" {
			first = filepath.Base(first)
		}
		if first != strings.Split(tt.file, " and ")[0] || local != tt.local {
			t.Errorf("Locate(%q) = %q, %q; want %q, %q", tt.path, file, local, tt.file, tt.local)
		}
		if strings.Contains(tt.file, " and ") && !strings.Contains(file, "40-admin.yaml") {
			t.Errorf("Locate(%q) = %q, want both files", tt.path, file)
		}
	}
}

func TestLoadFilesConflictsNameBothFiles(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"a.yaml": "global:\n  admin: { bind: \"127.0.0.1:2019\" }\n  accessLog: true\nsites: []\n",
		"b.yaml": "global:\n  admin: { bind: \"127.0.0.1:2020\" }\n  accessLog: { format: json }\nsites: []\n",
	})
	_, err := LoadFiles([]string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")}, nil)
	if err == nil {
		t.Fatal("want a conflict")
	}
	msg := err.Error()
	for _, want := range []string{
		filepath.Join(dir, "b.yaml") + ": error at global.admin.bind: is also set in " + filepath.Join(dir, "a.yaml"),
		filepath.Join(dir, "b.yaml") + ": error at global.accessLog: is also set in " + filepath.Join(dir, "a.yaml"),
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestLoadFilesErrorsNameTheFile(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"a.yaml":     "port: 8080\n",
		"b.yaml":     "port: [\n",
		"c.json":     `{"sites": 3}`,
		"empty/x.md": "",
	})
	_, err := LoadFiles([]string{dir}, nil)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{filepath.Join(dir, "b.yaml") + ": parse error at line", filepath.Join(dir, "c.json") + ": error at sites: must be an array"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := LoadFiles([]string{filepath.Join(dir, "empty")}, nil); err == nil || !strings.Contains(err.Error(), "holds no .yaml, .yml, .json file") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := LoadFiles([]string{filepath.Join(dir, "a.yaml"), dir}, nil); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a file twice: %v", err)
	}
	if _, err := LoadFiles([]string{filepath.Join(dir, "missing.yaml")}, nil); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadFilesOneFileIsLoadFile(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{"d/only.yaml": "port: 8080\n"})
	doc, err := LoadFiles([]string{filepath.Join(dir, "d")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Shape != ShapeSingle || doc.Origins != nil || doc.Path != filepath.Join(dir, "d", "only.yaml") {
		t.Fatalf("one file: shape %v origins %v path %q", doc.Shape, doc.Origins, doc.Path)
	}
}

func TestDiagnosticsOfAMergedDocumentNameTheFile(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"a.yaml": "sites:\n  - port: 8080\n",
		"b.yaml": "port: 8080\n",
	})
	doc, err := LoadFiles([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var d Diagnostics
	d.TrackDocument(doc)
	d.Errorf("sites[1].host", "duplicate site *:8080 (also sites[0])")
	d.Warnf("sites", "no sites")
	got := []string{d.Errors()[0].String(), d.Warnings()[0].String()}
	want := []string{
		filepath.Join(dir, "b.yaml") + ": error at host: duplicate site *:8080 (also " + filepath.Join(dir, "a.yaml") + ": sites[0])",
		"warning at sites: no sites",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// BenchmarkLoadFiles loads a directory of n files of one site each (n = 1, 20, 200):
// `go test -run X -bench LoadFiles ./core/config/`.
func BenchmarkLoadFiles(b *testing.B) {
	for _, n := range []int{1, 20, 200} {
		dir := b.TempDir()
		for i := 0; i < n; i++ {
			src := fmt.Sprintf("sites:\n  - host: s%d.example\n    port: 8080\n    proxy:\n      /api: { targets: [\"http://10.0.0.1:4000\"], strategy: least-conn }\n", i)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.yaml", i)), []byte(src), 0o600); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := LoadFiles([]string{dir}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
