package config

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
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
// (a binary search: about log2(lines)+log2(line length) parses); larger files get the
// parser's own line.
const maxLocateBytes = 256 << 10

// linearColumnBytes bounds the files whose mistake's column is found by trying every
// character of its line rather than by a binary search.
const linearColumnBytes = 32 << 10

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
	lines := yamlLines(string(data))
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

// locateYAML finds the line and column of the mistake (see YAMLSyntaxError): the first line
// whose prefix of the file fails with msg, then the first character of that line. The line is
// a binary search (a prefix that fails is assumed to keep failing as it grows); the search
// starts just before the reported line when the text before it parses. It returns the
// reported line and no column when no prefix fails the same way.
func locateYAML(lines []string, msg string, reported int) (line, col int) {
	if reported > len(lines) {
		// yaml.v3 reports the line after the last one for a mistake at the end of the file.
		reported = len(lines)
	}
	ends := make([]int, len(lines)+1) // ends[i] is the byte length of lines[:i]
	for i, l := range lines {
		ends[i+1] = ends[i] + len(l)
	}
	text := strings.Join(lines, "")
	fails := func(n int) bool { return yamlFailsWith(text[:n], msg) }
	lo := 1
	if reported > 2 && !fails(ends[reported-2]) {
		lo = reported - 1
	}
	i := lo + sort.Search(len(lines)-lo+1, func(k int) bool { return fails(ends[lo+k]) })
	if i > len(lines) {
		return reported, 0
	}
	var runeEnds []int // byte offsets just past each character of the line
	for off := 0; off < len(lines[i-1]); {
		_, size := utf8.DecodeRuneInString(lines[i-1][off:])
		off += size
		runeEnds = append(runeEnds, off)
	}
	failsAt := func(k int) bool { return fails(ends[i-1] + runeEnds[k]) }
	c := sort.Search(len(runeEnds), failsAt)
	if ends[i] <= linearColumnBytes {
		// A line's prefixes fail less regularly than the file's (a tab fails alone, then
		// not with what follows it): small files are searched character by character.
		c = len(runeEnds)
		for k := range runeEnds {
			if failsAt(k) {
				c = k
				break
			}
		}
	}
	if c == len(runeEnds) {
		return i, 0
	}
	return i, c + 1
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

// yamlLines splits text after each line break as YAML counts them ("\r\n", "\n", or a "\r"
// alone), so that index i-1 is the line yaml.v3 reports as line i; every line keeps its break.
func yamlLines(text string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\n':
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				continue
			}
		default:
			continue
		}
		lines = append(lines, text[start:i+1])
		start = i + 1
	}
	return append(lines, text[start:])
}
