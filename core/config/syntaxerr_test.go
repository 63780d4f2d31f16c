package config

import (
	"errors"
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
