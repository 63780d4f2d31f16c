package config

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yamlv3 "go.yaml.in/yaml/v3"
)

// SyntaxError is a config file that does not parse: the parser's message and, where it can
// be found, the line and column of the mistake with that line of the file. It only ever
// quotes the file's text ($VAR values are substituted after parsing).
type SyntaxError struct {
	// Line and Column are 1-based; 0 when unknown. Column counts characters.
	Line, Column int
	// Msg is the parser's message without its position.
	Msg string
	// Text is the line of the file, "" when unknown.
	Text string
}

// Error renders "parse error at line L, column C: msg" followed by the line and a caret.
func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "parse error: " + e.Msg
	}
	loc := "line " + strconv.Itoa(e.Line)
	if e.Column > 0 {
		loc += ", column " + strconv.Itoa(e.Column)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "parse error at %s: %s", loc, e.Msg)
	if e.Text == "" {
		return b.String()
	}
	num := strconv.Itoa(e.Line)
	fmt.Fprintf(&b, "\n  %s | %s", num, e.Text)
	if e.Column > 0 {
		fmt.Fprintf(&b, "\n  %s | %s^", strings.Repeat(" ", len(num)), caretIndent(e.Text, e.Column))
	}
	return b.String()
}

// caretIndent returns the blanks that put a caret under character col of text (tabs kept,
// so the caret lines up however the terminal expands them).
func caretIndent(text string, col int) string {
	var b strings.Builder
	i := 1
	for _, r := range text {
		if i >= col {
			break
		}
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
		i++
	}
	return b.String()
}

// maxLocateBytes bounds the files whose YAML mistakes are located by re-parsing prefixes
// (quadratic in the size); larger files get the parser's own line.
const maxLocateBytes = 64 << 10

// yamlLineRE splits yaml.v3's "yaml: line N: message".
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?s)(.*)$`)

// splitYAMLError returns the line yaml.v3 reported (0 if none) and the message alone.
func splitYAMLError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, msg
}

// YAMLSyntaxError describes a yaml.v3 parse error of data. yaml.v3 often reports the line of
// the enclosing block (or none); the mistake is found as the first line, and in it the first
// character, at which a prefix of the file fails with the same message.
func YAMLSyntaxError(data []byte, err error) error {
	reported, msg := splitYAMLError(err)
	if strings.HasPrefix(msg, "unmarshal errors") {
		// Not a syntax error (a duplicate key): yaml.v3 names the exact lines.
		return &SyntaxError{Msg: msg}
	}
	lines := strings.SplitAfter(string(data), "\n")
	line, col := reported, 0
	if len(data) <= maxLocateBytes {
		line, col = locateYAML(lines, msg, reported)
	}
	e := &SyntaxError{Line: line, Column: col, Msg: msg}
	if line > 0 && line <= len(lines) {
		e.Text = strings.TrimRight(lines[line-1], "\r\n")
	}
	return e
}

// locateYAML finds the line and column of the mistake (see YAMLSyntaxError); it returns the
// reported line and no column when no prefix fails the same way.
func locateYAML(lines []string, msg string, reported int) (line, col int) {
	var prefix strings.Builder
	for i, l := range lines {
		if !yamlFailsWith(prefix.String()+l, msg) {
			prefix.WriteString(l)
			continue
		}
		for c, off := 1, 0; off < len(l); c++ {
			_, size := utf8.DecodeRuneInString(l[off:])
			off += size
			if yamlFailsWith(prefix.String()+l[:off], msg) {
				return i + 1, c
			}
		}
		return i + 1, 0
	}
	return reported, 0
}

// yamlFailsWith reports whether text fails to parse with the message msg.
func yamlFailsWith(text, msg string) bool {
	var n yamlv3.Node
	err := yamlv3.Unmarshal([]byte(text), &n)
	if err == nil {
		return false
	}
	_, m := splitYAMLError(err)
	return m == msg
}

// JSONSyntaxError describes an encoding/json error of parsed, the text the decoder read,
// which is orig with bare $VAR references quoted (the same line breaks). The column and
// caret are given only when that line is unchanged.
func JSONSyntaxError(orig, parsed []byte, err error) error {
	var se *stdjson.SyntaxError
	var te *stdjson.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 1 || off > int64(len(parsed)) {
		return &SyntaxError{Msg: err.Error()}
	}
	// Offset is just past the offending byte.
	before := parsed[:off-1]
	line := bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	col := utf8.RuneCount(parsed[start:off])
	e := &SyntaxError{Line: line, Column: col, Msg: err.Error()}
	origLines := strings.SplitAfter(string(orig), "\n")
	parsedLines := strings.SplitAfter(string(parsed), "\n")
	if line <= len(origLines) {
		e.Text = strings.TrimRight(origLines[line-1], "\r\n")
		if line > len(parsedLines) || parsedLines[line-1] != origLines[line-1] {
			e.Column = 0
		}
	}
	return e
}
