package script

import (
	"slices"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestUnguardedMapWrites: package-level maps written while serving, in a package without
// sync, are found; locals, init and packages that import sync are not.
func TestUnguardedMapWrites(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"literal map written in a handler", "package p\nvar seen = map[string]int{}\nfunc H() {\n\tseen[\"a\"]++\n}\n", []string{"a.go:4: seen"}},
		{"declared type, assigned and deleted", "package p\nvar m map[string]bool\nfunc H(k string) {\n\tm[k] = true\n\tdelete(m, k)\n}\n", []string{"a.go:4: m", "a.go:5: m"}},
		{"make, written in a closure", "package p\nvar c = make(map[int]int)\nfunc H() func() { return func() { c[1] = 2 } }\n", []string{"a.go:3: c"}},
		{"written in init only", "package p\nvar m = map[string]int{}\nfunc init() { m[\"a\"] = 1 }\n", nil},
		{"only read", "package p\nvar m = map[string]int{\"a\": 1}\nfunc H() int { return m[\"a\"] }\n", nil},
		{"package imports sync", "package p\nimport \"sync\"\nvar mu sync.Mutex\nvar m = map[string]int{}\nfunc H() { mu.Lock(); m[\"a\"] = 1; mu.Unlock() }\n", nil},
		{"not a map", "package p\nvar s = []int{1}\nfunc H() { s[0] = 2 }\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unguardedMapWrites(map[string][]byte{"a.go": []byte(tt.src)}); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnguardedMapWarning: validate warns about such a script, at the entry's path.
func TestUnguardedMapWarning(t *testing.T) {
	_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - {type: script, path: testdata/scripts/counter.go}\n", config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Errors(); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	ws := d.Warnings()
	if len(ws) != 1 || ws[0].Path != "middleware[0].path" || !strings.Contains(ws[0].Message, "counter.go:15: hits writes a package-level map") {
		t.Fatalf("warnings %v", ws)
	}
}

// TestUnguardedGoWarning: validate warns about a go statement Conduit cannot give a recover,
// at the entry's path, and builds the script.
func TestUnguardedGoWarning(t *testing.T) {
	_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - {type: script, path: testdata/scripts/gonamed.go}\n", config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Errors(); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	ws := d.Warnings()
	if len(ws) != 1 || ws[0].Path != "middleware[0].path" || !strings.Contains(ws[0].Message, "gonamed.go:13: a panic in the goroutine this go statement starts ends the whole process") {
		t.Fatalf("warnings %v", ws)
	}
}
