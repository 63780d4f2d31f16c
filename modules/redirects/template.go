package redirects

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// template is a compiled `to`: literal text and capture-group references, so a request
// only copies bytes.
type template struct {
	parts []part
	size  int // literal bytes, for the buffer size
}

// part is literal text (group < 0) or a capture group.
type part struct {
	lit   string
	group int
}

// compileTemplate parses $N, ${N}, $name, ${name} and $$ (a literal '$') in s, with the
// rules of regexp.Expand: $name takes the longest run of letters, digits and '_'. bad lists
// the references to groups re does not have (they expand to "", as in Go and Rust).
func compileTemplate(s string, re *regexp.Regexp) (t template, bad []string) {
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String(), group: -1})
			t.size += lit.Len()
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			lit.WriteByte(c)
			continue
		}
		name, end, ok := refName(s, i+1)
		if !ok {
			if s[i+1] == '$' {
				lit.WriteByte('$')
				i++
				continue
			}
			lit.WriteByte(c)
			continue
		}
		i = end - 1
		g := -1
		if n := groupNumber(name); n >= 0 {
			if n <= re.NumSubexp() {
				g = n
			}
		} else {
			g = re.SubexpIndex(name)
		}
		if g < 0 {
			bad = append(bad, "$"+name)
			continue
		}
		flush()
		t.parts = append(t.parts, part{group: g})
	}
	flush()
	return t, bad
}

// refName reads a reference name starting at s[i] (just after '$'): "{name}" or a run of
// letters, digits and '_' (Unicode, as regexp.Expand). end is the index after the reference.
func refName(s string, i int) (name string, end int, ok bool) {
	if s[i] == '{' {
		j := strings.IndexByte(s[i:], '}')
		if j < 2 {
			return "", 0, false
		}
		name = s[i+1 : i+j]
		if nameLen(name) != len(name) {
			return "", 0, false
		}
		return name, i + j + 1, true
	}
	n := nameLen(s[i:])
	if n == 0 {
		return "", 0, false
	}
	return s[i : i+n], i + n, true
}

// nameLen returns the byte length of the leading run of name runes in s.
func nameLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		n += size
	}
	return n
}

// expand builds the Location for a match m of path, appending the request's query (after
// '&' when the target already has one).
func (t *template) expand(path string, m []int, rawQuery string) string {
	n := t.size + len(rawQuery) + 1
	for _, p := range t.parts {
		if p.group >= 0 && 2*p.group+1 < len(m) && m[2*p.group] >= 0 {
			n += m[2*p.group+1] - m[2*p.group]
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		if p.group < 0 {
			b.WriteString(p.lit)
			continue
		}
		if 2*p.group+1 < len(m) && m[2*p.group] >= 0 {
			b.WriteString(path[m[2*p.group]:m[2*p.group+1]])
		}
	}
	if rawQuery != "" {
		if strings.Contains(b.String(), "?") {
			b.WriteByte('&')
		} else {
			b.WriteByte('?')
		}
		b.WriteString(rawQuery)
	}
	return b.String()
}

// groupNumber reads a purely numeric reference as regexp.Expand does (no leading zeros,
// below 1e8); -1 means the reference is a name.
func groupNumber(name string) int {
	num := 0
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' || num >= 1e8 {
			return -1
		}
		num = num*10 + int(name[i]-'0')
	}
	if name[0] == '0' && len(name) > 1 {
		return -1
	}
	return num
}
