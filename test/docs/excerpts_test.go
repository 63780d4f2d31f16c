// Package docs_test checks that code quoted in docs/*.md is still the code of the repository.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// excerptRe matches an excerpt marker and the fenced code block right after it:
//
//	<!-- excerpt: path/to/file.go -->
//	```go
//	...
//	```
var excerptRe = regexp.MustCompile("(?s)<!-- excerpt: ([^ ]+) -->\n```[a-z]*\n(.*?)```")

// excerpt is one quoted block of a docs page and the repository file it quotes.
type excerpt struct {
	page, file, code string
}

// readExcerpts returns the marked excerpts of every docs/*.md page under root.
func readExcerpts(t *testing.T, root string) []excerpt {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []excerpt
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range excerptRe.FindAllStringSubmatch(string(b), -1) {
			out = append(out, excerpt{page: filepath.Base(p), file: m[1], code: m[2]})
		}
	}
	return out
}

// TestDocExcerptsMatchCode fails when a block of code a docs page quotes (marked
// `<!-- excerpt: file -->`) no longer appears verbatim in the file it names, so the worked
// example of docs/architecture.md ("Adding a module") stays true.
func TestDocExcerptsMatchCode(t *testing.T) {
	root := filepath.Join("..", "..")
	all := readExcerpts(t, root)
	perPage := map[string]int{}
	for _, e := range all {
		perPage[e.page]++
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(e.file)))
		if err != nil {
			t.Errorf("%s quotes %s: %v", e.page, e.file, err)
			continue
		}
		if !strings.Contains(string(src), e.code) {
			t.Errorf("%s quotes %s, but the file no longer contains:\n%s", e.page, e.file, e.code)
		}
	}
	// The worked example must exist: a page without excerpts would pass vacuously.
	if perPage["architecture.md"] < 5 {
		t.Fatalf("docs/architecture.md has %d marked excerpts; the \"Adding a module\" section quotes at least 5", perPage["architecture.md"])
	}
}

// TestExcerptMarkerIsStrict checks the marker parser on a page that quotes one block.
func TestExcerptMarkerIsStrict(t *testing.T) {
	tests := []struct {
		name, page string
		want       []string
	}{
		{"marked block", "x\n<!-- excerpt: a.go -->\n```go\nfunc f() {}\n```\n", []string{"a.go|func f() {}\n"}},
		{"unmarked block", "```go\nfunc f() {}\n```\n", nil},
		{"marker not right before the fence", "<!-- excerpt: a.go -->\n\n```go\nx\n```\n", nil},
		{"two blocks", "<!-- excerpt: a.go -->\n```go\nA\n```\n<!-- excerpt: b.go -->\n```\nB\n```\n", []string{"a.go|A\n", "b.go|B\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range excerptRe.FindAllStringSubmatch(tt.page, -1) {
				got = append(got, m[1]+"|"+m[2])
			}
			if strings.Join(got, ";") != strings.Join(tt.want, ";") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
