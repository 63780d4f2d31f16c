package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestComplete: the completion of partial command lines from the command table, including
// bash's split of --flag=value into three words.
func TestComplete(t *testing.T) {
	tests := []struct {
		words []string
		bash  bool
		kind  string
		want  []string
	}{
		{[]string{""}, false, "words", nil}, // every command; checked below
		{[]string{"fm"}, false, "words", []string{"fmt"}},
		{[]string{"-c", "x.yaml", "ve"}, false, "words", []string{"version"}},
		{[]string{"-c", ""}, false, "files", nil},
		{[]string{"validate", ""}, false, "files", nil},
		{[]string{"validate", "x.yaml", ""}, false, "none", nil},
		{[]string{"validate", "--config", ""}, false, "files", nil},
		{[]string{"fmt", "--w"}, false, "words", []string{"--write"}},
		{[]string{"run", "--log-level=w"}, false, "words", []string{"--log-level=warn"}},
		{[]string{"run", "--log-level", "=", "w"}, true, "words", []string{"warn"}},
		{[]string{"run", "--log-level", "=", ""}, true, "words", []string{"debug", "info", "warn", "error"}},
		{[]string{"run", "--log-level", "e"}, false, "words", []string{"error"}},
		{[]string{"--log"}, false, "words", []string{"--log-level"}},
		{[]string{"help", "ver"}, false, "words", []string{"version"}},
		{[]string{"help", "version", ""}, false, "none", nil},
		{[]string{"completions", "f"}, false, "words", []string{"fish"}},
		{[]string{"status", "--upstream", "--j"}, false, "words", []string{"--json"}},
		{[]string{"nosuch", ""}, false, "none", nil},
		{[]string{completeCommand[:3]}, false, "words", nil}, // hidden
	}
	for _, tc := range tests {
		got := Complete(tc.words, tc.bash)
		if got.Kind != tc.kind {
			t.Errorf("%q: kind %q, want %q", tc.words, got.Kind, tc.kind)
			continue
		}
		if tc.want != nil && !slices.Equal(got.Words, tc.want) {
			t.Errorf("%q: %q, want %q", tc.words, got.Words, tc.want)
		}
		if tc.want == nil && tc.words[len(tc.words)-1] != "" && len(got.Words) > 0 {
			t.Errorf("%q: %q, want nothing", tc.words, got.Words)
		}
	}
	all := Complete([]string{""}, false).Words
	for _, c := range Commands() {
		if !slices.Contains(all, c.Name) {
			t.Errorf("a new word does not offer %s (%q)", c.Name, all)
		}
	}
	if slices.Contains(all, completeCommand) {
		t.Errorf("the hidden %s is offered", completeCommand)
	}
}

// TestDescribeReadsTheParsedFlagSet: Describe reports the flags a command's Run parses,
// aliases grouped, with placeholders, defaults and suggestions.
func TestDescribeReadsTheParsedFlagSet(t *testing.T) {
	info, ok := Describe("run")
	if !ok {
		t.Fatal("run is not described")
	}
	var spell []string
	for _, f := range info.Flags {
		spell = append(spell, strings.Join(f.Spellings(), ","))
		if f.Names[0] == "c" && (!f.Files || f.Value != "FILE") {
			t.Errorf("-c: %+v, want a FILE", f)
		}
		if f.Names[0] == "log-level" && !slices.Equal(f.Choices, []string{"debug", "info", "warn", "error"}) {
			t.Errorf("--log-level choices %q", f.Choices)
		}
	}
	if want := []string{"--bind", "-c,--config", "--log-level", "--set", "--unset"}; !slices.Equal(spell, want) {
		t.Errorf("run flags %q, want %q", spell, want)
	}
	if !info.Args.Files {
		t.Errorf("run takes FILE by name: %+v (synopsis %q)", info.Args, info.Synopsis)
	}
}

// TestArgsOfSynopsis: what a synopsis says about positional arguments.
func TestArgsOfSynopsis(t *testing.T) {
	tests := []struct {
		syn  string
		want ArgInfo
	}{
		{"[-c FILE | FILE]", ArgInfo{Files: true}},
		{"[-c FILE] [--admin ADDR] [--json] [flags]", ArgInfo{}},
		{"bash|zsh|fish", ArgInfo{Words: []string{"bash", "zsh", "fish"}}},
		{"[add|remove|weight] [-c FILE]", ArgInfo{Words: []string{"add", "remove", "weight"}}},
		{"[COMMAND]", ArgInfo{Commands: true}},
		{"[--out=FILE] DIR", ArgInfo{Dirs: true}},
		{"", ArgInfo{}},
	}
	for _, tc := range tests {
		got := argsOf(tc.syn)
		if !slices.Equal(got.Words, tc.want.Words) || got.Files != tc.want.Files || got.Dirs != tc.want.Dirs || got.Commands != tc.want.Commands {
			t.Errorf("argsOf(%q) = %+v, want %+v", tc.syn, got, tc.want)
		}
	}
}

// TestRoffText: text that roff would read as a request or an escape is escaped.
func TestRoffText(t *testing.T) {
	for in, want := range map[string]string{
		`.hidden`:   `\&.hidden`,
		`'quoted`:   `\&'quoted`,
		`a\b`:       `a\eb`,
		`--flag`:    `\-\-flag`,
		"2xx … 5xx": `2xx \[u2026] 5xx`,
	} {
		if got := roffText(in); got != want {
			t.Errorf("roffText(%q) = %q, want %q", in, got, want)
		}
	}
}
