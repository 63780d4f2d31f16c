package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestSyntaxErrorPosition: the mistake's line and column are found past yaml.v3's reported
// line, columns count characters (not bytes), and the caret keeps the line's tabs.
func TestSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		name, src string
		line, col int
		caretLine string
		format    Format
	}{
		{"block indent", "a:\n  b: 1\n c: 2\n", 3, 2, "    |  ^", FormatYAML},
		{"after multibyte", "é: ü: 1\n", 1, 5, "    |     ^", FormatYAML},
		{"tab before the mistake", "a:\n  b: [1,\n\tc: 2\n", 3, 2, "    | \t^", FormatYAML},
		{"json", "[\n  {\"port\": 1,}\n]", 2, 14, "    |              ^", FormatJSON},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), tt.format, nil)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: err %v, want a *SyntaxError", tt.name, err)
			continue
		}
		if se.Line != tt.line || se.Column != tt.col {
			t.Errorf("%s: line %d column %d, want %d %d (%v)", tt.name, se.Line, se.Column, tt.line, tt.col, err)
		}
		lines := strings.Split(se.Error(), "\n")
		if got := lines[len(lines)-1]; got != tt.caretLine {
			t.Errorf("%s: caret line %q, want %q\n%v", tt.name, got, tt.caretLine, err)
		}
	}
}

// TestSyntaxErrorLocateIsBounded: a mistake at the end of the largest file that is searched
// is still located quickly (a few dozen parses, not one per line).
func TestSyntaxErrorLocateIsBounded(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < maxLocateBytes-100; i++ {
		b.WriteString("key" + strings.Repeat("x", 20) + ": value\n")
	}
	src := b.String() + "bad: : :\n"
	start := time.Now()
	_, err := Parse([]byte(src), FormatYAML, nil)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("locating took %v", took)
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != strings.Count(src, "\n") {
		t.Errorf("err %v, want the last line", err)
	}
	t.Logf("%d KiB file, mistake on the last line: located in %v", maxLocateBytes>>10, time.Since(start))
}

// TestYAMLLinesCountsBreaksAsYAML checks that yamlLines splits where yaml.v3 counts a new
// line, so a reported line number indexes the right text.
func TestYAMLLinesCountsBreaksAsYAML(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", []string{""}},
		{"a", []string{"a"}},
		{"a\n", []string{"a\n", ""}},
		{"a\r\nb", []string{"a\r\n", "b"}},
		{"a\rb\rc", []string{"a\r", "b\r", "c"}},
		{"\r\r\r\"", []string{"\r", "\r", "\r", "\""}},
	} {
		if got := yamlLines(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("yamlLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestYAMLSyntaxErrorCarriageReturns is the fuzz finding of FuzzParse: lines broken by a lone
// "\r" made the reported line point past the "\n"-split lines and panicked.
func TestYAMLSyntaxErrorCarriageReturns(t *testing.T) {
	_, err := Parse([]byte("a: 1\r  b: [\r"), FormatYAML, nil)
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("want a *SyntaxError, got %v", err)
	}
	if se.Line < 1 || se.Line > 3 {
		t.Errorf("line %d, want 1–3 (%v)", se.Line, err)
	}
}
