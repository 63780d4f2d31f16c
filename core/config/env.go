package config

import (
	"strings"
)

// Substitute replaces $NAME in text with the value lookup returns for NAME, on the raw file
// before parsing (docs/configuration.md, "Loading"):
//
//   - NAME starts with a letter or '_' and continues with letters, digits or '_';
//   - the value is JSON-escaped (quotes, backslashes and control characters), so a value cannot
//     break the document's structure;
//   - an unset variable stays as the literal "$NAME";
//   - "$42", "$$VAR" and a trailing "$" are left untouched. There is no ${VAR} syntax.
func Substitute(text string, lookup func(string) (string, bool)) string {
	if strings.IndexByte(text, '$') < 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		c := text[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		// "$$": both dollars and whatever follows stay literal.
		if i+1 < len(text) && text[i+1] == '$' {
			j := i
			for j < len(text) && text[j] == '$' {
				j++
			}
			for j < len(text) && isNameByte(text[j], false) {
				j++
			}
			b.WriteString(text[i:j])
			i = j
			continue
		}
		j := i + 1
		if j >= len(text) || !isNameByte(text[j], true) {
			b.WriteByte('$')
			i++
			continue
		}
		for j < len(text) && isNameByte(text[j], false) {
			j++
		}
		name := text[i+1 : j]
		if v, ok := lookup(name); ok {
			writeJSONEscaped(&b, v)
		} else {
			b.WriteString(text[i:j])
		}
		i = j
	}
	return b.String()
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

func writeJSONEscaped(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
}
