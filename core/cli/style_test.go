package cli

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestTableAlignsPaintedCells(t *testing.T) {
	var b strings.Builder
	tb := &Table{w: &b, style: Style{on: true}, header: []string{"URL", "HEALTHY"}}
	st := tb.Style()
	tb.PaintedRow([]func(string) string{nil, st.Status}, "http://a:1", true)
	tb.PaintedRow([]func(string) string{nil, st.Status}, "http://bb:22", false)
	if err := tb.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "\x1b[1mURL\x1b[0m           \x1b[1mHEALTHY\x1b[0m\n" +
		"http://a:1    \x1b[32mtrue\x1b[0m\n" +
		"http://bb:22  \x1b[1;31mfalse\x1b[0m\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
	b.Reset()
	plain := &Table{w: &b, header: []string{"A", "B"}}
	plain.Row("xx", 1)
	_ = plain.Flush()
	if b.String() != "A   B\nxx  1\n" {
		t.Fatalf("plain table %q", b.String())
	}
}

func TestStyleForIsOffUnlessATerminal(t *testing.T) {
	lookup := func(vars map[string]string) func(string) (string, bool) {
		return func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tests := []struct {
		name string
		env  *Env
		out  io.Writer
	}{
		{"builder", &Env{LookupEnv: lookup(nil)}, &strings.Builder{}},
		{"pipe", &Env{LookupEnv: lookup(nil)}, w},
		{"NO_COLOR", &Env{LookupEnv: lookup(map[string]string{"NO_COLOR": "1"})}, w},
		{"--no-color", &Env{LookupEnv: lookup(nil), NoColor: true}, w},
	}
	for _, tt := range tests {
		if st := StyleFor(tt.env, tt.out); st.On() || st.Red("x") != "x" {
			t.Errorf("%s: colour on", tt.name)
		}
	}
	d := config.Diagnostic{Path: "sites[0].port", Message: "bad", File: "a.yaml"}
	if got := (Style{}).Diagnostic(d); got != d.String() {
		t.Errorf("plain diagnostic %q", got)
	}
	if got := (Style{on: true}).Diagnostic(d); got != "a.yaml: \x1b[1;31merror\x1b[0m at \x1b[1msites[0].port\x1b[0m: bad" {
		t.Errorf("coloured diagnostic %q", got)
	}
}

func TestNoColorIsAGlobalOption(t *testing.T) {
	env := &Env{}
	got := stripNoColor(env, []string{"--no-color", "validate", "-c", "x", "--", "--no-color"})
	if !env.NoColor || strings.Join(got, " ") != "validate -c x -- --no-color" {
		t.Fatalf("%v %q", env.NoColor, got)
	}
}
