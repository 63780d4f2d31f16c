package docs_test

// Every ```yaml block of docs/*.md and README.md (and every ```json block that is a whole config) is a
// fixture: TestDocConfigBlocksValidate parses it with config.Parse and builds it with
// server.Build, the pipeline of `conduit validate`, with every module of modules/bundle/full
// linked. Errors fail the test, and so do warnings (an unknown key is a warning), each naming
// the page and the line of the block.
//
// The rules that turn a block into a config:
//
//   - Whole config: a block whose top level has `sites` or `global`, or is a list (`- port:`),
//     is checked as written. A block of only `global:` gets one site (`sites: [{port: 8080}]`).
//   - Single-site config: a block whose top level has `port` is a whole site, checked as written.
//   - Site fragment: any other block (`proxy:`, `basicAuth:`, `healthCheck:` …) is a part of
//     a site and is checked as `sites: [{port: 8080, <block>}]`.
//   - Alternatives: a block whose top-level keys repeat (`static: ./dist` then
//     `static: [./dist, ./public]`) lists alternative spellings; each top-level entry (its key
//     line and the indented lines under it) is checked on its own, by the rules above.
//   - `<!-- invalid: reason -->` on the line right before the fence marks a block shown for its
//     error; the test checks that it is refused.
//
// Placeholders: `$VAR` references resolve from docEnv (a reference to any other upper-case
// variable fails the test; hashes such as `$2y$10$…` are real ones in the docs); absolute paths under /etc/conduit, /var/lib/conduit and /var/log/conduit are moved
// into a temporary directory holding a test certificate, key and CA; relative paths resolve in
// a temporary working directory holding ./public, ./dist, ./dist/index.html and ./docs-dist.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/tlstest"
	_ "github.com/conduitproxy/conduit/modules/bundle/full"
)

// docEnv holds the environment variables the docs reference, with values that validate.
var docEnv = map[string]string{
	"ADMIN_TOKEN":         "docs-admin-token-0123456789abcdef",
	"ADMIN_PASS":          "docs-admin-password",
	"API_KEY_PRIMARY":     "docs-api-key-primary-0123456789",
	"API_KEY_SECONDARY":   "docs-api-key-secondary-012345678",
	"JWT_SECRET":          "docs-jwt-secret-0123456789abcdef0123456789",
	"ALICE_API_KEY":       "docs-alice-api-key-0123456789",
	"PIPELINE_JWT_SECRET": "docs-pipeline-jwt-secret-0123456789abcdef",
	"REPORTS_KEY":         "docs-reports-key-0123456789",
	"METRICS_TOKEN":       "docs-metrics-token-0123456789abcdef",
}

// docBlock is one fenced config block of a docs page.
type docBlock struct {
	page    string
	line    int // line of the opening fence, 1-based
	lang    string
	text    string
	invalid string // the reason of a preceding `<!-- invalid: reason -->`, or ""
}

var (
	// envNameRe matches the names docs use for environment variables; a lower-case `$apr1`
	// or `$r` inside a password hash is not one and stays literal, as in a real config.
	envNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	fenceRe   = regexp.MustCompile("^```([a-z]*)\\s*$")
	invalidRe = regexp.MustCompile(`^<!-- invalid: (.+) -->$`)
)

// extractBlocks returns the ```yaml and ```json blocks of one page.
func extractBlocks(page, text string) []docBlock {
	lines := strings.Split(text, "\n")
	var out []docBlock
	for i := 0; i < len(lines); i++ {
		m := fenceRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		if m[1] == "yaml" || m[1] == "json" {
			b := docBlock{page: page, line: i + 1, lang: m[1], text: strings.Join(lines[i+1:j], "\n") + "\n"}
			if i > 0 {
				if im := invalidRe.FindStringSubmatch(strings.TrimSpace(lines[i-1])); im != nil {
					b.invalid = im[1]
				}
			}
			out = append(out, b)
		}
		i = j
	}
	return out
}

// topEntries splits a YAML block into its top-level entries: each starts at a line in
// column 0 that is not a comment, and keeps the indented lines under it.
func topEntries(text string) (keys []string, entries []string) {
	for _, l := range strings.Split(text, "\n") {
		if l != "" && l[0] != ' ' && l[0] != '#' && l[0] != '-' {
			k, _, _ := strings.Cut(l, ":")
			keys = append(keys, k)
			entries = append(entries, "")
		}
		if len(entries) > 0 {
			entries[len(entries)-1] += l + "\n"
		}
	}
	return keys, entries
}

// configsOf turns a block into the configs to check, by the rules at the top of this file.
func configsOf(b docBlock) []string {
	if b.lang == "json" {
		return []string{b.text}
	}
	keys, entries := topEntries(b.text)
	seen := map[string]bool{}
	repeated := false
	for _, k := range keys {
		repeated = repeated || seen[k]
		seen[k] = true
	}
	if !repeated {
		return []string{asConfig(b.text, keys)}
	}
	out := make([]string, 0, len(entries))
	for i, e := range entries {
		out = append(out, asConfig(e, keys[i:i+1]))
	}
	return out
}

// asConfig wraps a site fragment in a site; whole configs are returned unchanged.
func asConfig(text string, keys []string) string {
	whole, globalOnly := false, len(keys) > 0
	for _, k := range keys {
		whole = whole || k == "sites" || k == "global" || k == "port"
		globalOnly = globalOnly && k == "global"
	}
	switch {
	case len(keys) == 0: // a list of sites
		return text
	case globalOnly:
		return text + "sites:\n  - port: 8080\n"
	case whole:
		return text
	}
	return "sites:\n  - port: 8080\n" + indent(text, "    ")
}

func indent(text, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if l != "" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// isWholeJSON reports whether a JSON block is a config (a site or {global, sites}) rather
// than an output sample; only those are checked.
func isWholeJSON(text string) bool {
	return strings.Contains(text, `"sites"`) || strings.Contains(text, `"port"`)
}

// validate parses and builds one config, returning every error and warning.
func validate(text string, format config.Format, lookup func(string) (string, bool)) []string {
	doc, err := config.Parse([]byte(text), format, lookup)
	if err != nil {
		return []string{err.Error()}
	}
	g, d := server.Build(context.Background(), doc, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
	var out []string
	for _, w := range d.Warnings() {
		out = append(out, "warning: "+w.String())
	}
	for _, e := range d.Errors() {
		out = append(out, e.String())
	}
	if g != nil {
		g.Stop(context.Background())
	}
	return out
}

// TestDocConfigBlocksValidate checks every config block of docs/*.md (see the rules above).
func TestDocConfigBlocksValidate(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	placeholders := docFiles(t, tmp)
	t.Chdir(filepath.Join(tmp, "work"))

	var unknownVars []string
	lookup := func(name string) (string, bool) {
		v, ok := docEnv[name]
		if !ok && envNameRe.MatchString(name) {
			unknownVars = append(unknownVars, name)
		}
		return v, ok
	}
	checked := 0
	for _, b := range docBlocks(t, root) {
		format := config.FormatYAML
		if b.lang == "json" {
			format = config.FormatJSON
		}
		var problems []string
		for _, c := range configsOf(b) {
			unknownVars = nil
			problems = append(problems, validate(placeholders.Replace(c), format, lookup)...)
			for _, v := range unknownVars {
				problems = append(problems, fmt.Sprintf("$%s is not in docEnv of test/docs/blocks_test.go", v))
			}
			checked++
		}
		where := fmt.Sprintf("%s:%d", b.page, b.line)
		switch {
		case b.invalid != "" && len(problems) == 0:
			t.Errorf("%s is marked invalid (%s) but validates", where, b.invalid)
		case b.invalid == "" && len(problems) > 0:
			t.Errorf("%s does not validate:\n  %s\n--- block ---\n%s", where, strings.Join(problems, "\n  "), b.text)
		}
	}
	// The docs hold more than 20 config blocks; far fewer means the extraction broke.
	if checked < 20 {
		t.Fatalf("checked %d config blocks of docs/*.md; want at least 20", checked)
	}
}

// docBlocks returns the config blocks of docs/*.md and README.md: their ```yaml blocks and
// the ```json blocks that are whole configs.
func docBlocks(t *testing.T, root string) []docBlock {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []docBlock
	for _, p := range append(pages, filepath.Join(root, "README.md")) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		for _, b := range extractBlocks(filepath.ToSlash(rel), string(data)) {
			if b.lang == "json" && !isWholeJSON(b.text) {
				continue
			}
			out = append(out, b)
		}
	}
	return out
}

// docFiles creates the files the docs' paths name under dir and returns the replacer that
// moves the docs' absolute placeholder paths there.
func docFiles(t *testing.T, dir string) *strings.Replacer {
	t.Helper()
	for _, d := range []string{"work/public", "work/dist", "work/docs-dist", "etc/conduit/plugins", "var/lib/conduit/acme", "var/log/conduit"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca := tlstest.NewCA(t, "docs CA")
	app := ca.Server(t, "app.example.com")
	files := map[string][]byte{
		"work/dist/index.html":        []byte("<!doctype html>\n"),
		"work/public/index.html":      []byte("<!doctype html>\n"),
		"etc/conduit/app.crt":         app.CertPEM,
		"etc/conduit/app.key":         app.KeyPEM,
		"etc/conduit/clients.pem":     ca.PEM,
		"etc/conduit/internal-ca.pem": ca.PEM,
		// docs/wasm.md's guests: the example guests of plugins/wasm.
		"etc/conduit/plugins/header.wasm":   readFile(t, "../../plugins/wasm/wat/header.wasm"),
		"etc/conduit/plugins/hwheader.wasm": readFile(t, "../../plugins/wasm/wat/hwheader.wasm"),
	}
	// The scripts and the Traefik plugin docs/scripting.md configures, from the repository.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	const stamp = "plugins/plugins-local/src/github.com/conduitproxy/conduit-plugin-stamp"
	copies := map[string]string{
		"modules/script/testdata/scripts/gate.go":    "etc/conduit/scripts/gate.go",
		"modules/script/testdata/scripts/respond.go": "etc/conduit/scripts/respond.go",
		stamp + "/.traefik.yml":                      "etc/conduit/" + strings.TrimPrefix(stamp, "plugins/") + "/.traefik.yml",
		stamp + "/go.mod":                            "etc/conduit/" + strings.TrimPrefix(stamp, "plugins/") + "/go.mod",
		stamp + "/stamp.go":                          "etc/conduit/" + strings.TrimPrefix(stamp, "plugins/") + "/stamp.go",
	}
	for from, to := range copies {
		b, err := os.ReadFile(filepath.Join(root, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(to)), 0o755); err != nil {
			t.Fatal(err)
		}
		files[to] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return strings.NewReplacer(
		"/etc/conduit/", filepath.Join(dir, "etc/conduit")+"/",
		"/var/lib/conduit/", filepath.Join(dir, "var/lib/conduit")+"/",
		"/var/log/conduit/", filepath.Join(dir, "var/log/conduit")+"/",
	)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDocBlockRules checks how a block becomes the configs that are validated.
func TestDocBlockRules(t *testing.T) {
	tests := []struct {
		name, block string
		want        []string
	}{
		{"whole config", "sites:\n  - port: 1\n", []string{"sites:\n  - port: 1\n"}},
		{"list of sites", "- port: 1\n", []string{"- port: 1\n"}},
		{"global only gets a site", "global:\n  x: 1\n", []string{"global:\n  x: 1\nsites:\n  - port: 8080\n"}},
		{"site fragment is wrapped", "proxy:\n  /a: http://a\n# note\n",
			[]string{"sites:\n  - port: 8080\n    proxy:\n      /a: http://a\n    # note\n"}},
		{"repeated key lists alternatives", "static: ./a\nstatic: [./a]\n", []string{
			"sites:\n  - port: 8080\n    static: ./a\n",
			"sites:\n  - port: 8080\n    static: [./a]\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := configsOf(docBlock{lang: "yaml", text: tt.block})
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("configsOf(%q) = %q, want %q", tt.block, got, tt.want)
			}
		})
	}
}

// TestDocBlockExtraction checks fences, languages, lines and the invalid marker.
func TestDocBlockExtraction(t *testing.T) {
	page := "# T\n```yaml\na: 1\n```\n```sh\nls\n```\n<!-- invalid: no such key -->\n```yaml\nb: 2\n```\n```json\n{}\n```\n"
	got := extractBlocks("p.md", page)
	want := []docBlock{
		{page: "p.md", line: 2, lang: "yaml", text: "a: 1\n"},
		{page: "p.md", line: 9, lang: "yaml", text: "b: 2\n", invalid: "no such key"},
		{page: "p.md", line: 12, lang: "json", text: "{}\n"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("extractBlocks = %+v, want %+v", got, want)
	}
}

// TestDocBlockValidateRefuses checks that the pipeline the docs test uses reports what a doc
// must not show: an unknown key (a warning in Conduit, a failure here) and an invalid value.
func TestDocBlockValidateRefuses(t *testing.T) {
	tests := []struct{ name, block, want string }{
		{"unknown key", "proxy:\n  /api:\n    targets: [\"http://api:4000\"]\n    timeouts: { connectMs: 3000 }\n", "timeouts"},
		{"invalid value", "proxy:\n  /api:\n    targets: [\"http://api:4000\"]\n    timeout: { connectMs: fast }\n", "connectMs"},
		{"malformed bcrypt", "basicAuth:\n  users:\n    ops: \"$2y$10$…\"\n", "bcrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := configsOf(docBlock{lang: "yaml", text: tt.block})
			problems := validate(cs[0], config.FormatYAML, nil)
			if !strings.Contains(strings.Join(problems, "\n"), tt.want) {
				t.Errorf("validate(%q) = %q, want a problem naming %q", cs[0], problems, tt.want)
			}
		})
	}
}
