package canonical

import (
	"strings"
)

// Path returns the canonical form of an escaped request path (the path of the
// request-target as received, without the query), and its decoded form:
//
//   - percent-escapes of unreserved characters (ALPHA DIGIT "-" "." "_" "~") are decoded,
//     every other escape is kept with upper-case hex digits, and bytes that may not stand
//     unescaped in a path are escaped;
//   - an escaped slash or backslash, and a raw backslash, follow opts.Slashes;
//   - empty segments are merged unless opts.KeepEmptySegments (a trailing "/" stays);
//   - "." and ".." segments are removed as RFC 3986 §5.2.4 says (".." never climbs above
//     the root), after decoding, so "%2e%2e" is "..";
//   - refused with ErrPath: a malformed escape, an escaped NUL, a double-encoded dot, slash
//     or backslash ("%252e", "%252f", "%255c", also with the digits after "%25" escaped,
//     as in "%252%45"), a dot-segment carrying a path parameter ("..;x", ".;x"), and a
//     path that does not start with "/".
//
// An empty path is "/". escaped is what goes upstream; decoded is what every check compares
// against (url.URL's Path for escaped).
func Path(raw string, opts PathOptions) (escaped, decoded string, err error) {
	if raw == "" {
		return "/", "/", nil
	}
	if raw[0] != '/' {
		return "", "", ErrPath
	}
	if isCanonical(raw, opts) {
		if strings.IndexByte(raw, '%') < 0 {
			return raw, raw, nil
		}
		return raw, unescape(raw), nil
	}
	// Pass 1: one byte form per input byte or escape, with separators marked.
	segs := make([]string, 0, 8)
	var cur strings.Builder
	sawPercent := false // an escaped "%" was kept: the segments need the double-encoding check
	endSeg := func() {
		segs = append(segs, cur.String())
		cur.Reset()
	}
	// slash applies opts.Slashes to an escaped slash or backslash, or a raw backslash; false
	// means the path is refused.
	slash := func(c byte) bool {
		switch opts.Slashes {
		case RejectSlashes:
			return false
		case UnescapeSlashes:
			endSeg()
		default:
			writeEscape(&cur, c)
		}
		return true
	}
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '/':
			endSeg()
			continue
		case c == '\\':
			if !slash(c) {
				return "", "", ErrPath
			}
			continue
		case c < 0x20 || c == 0x7f:
			return "", "", ErrPath // control bytes never stand raw in a request-target
		case c != '%':
			if pathByteOK(c) {
				cur.WriteByte(c)
			} else {
				writeEscape(&cur, c)
			}
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			return "", "", ErrPath
		}
		v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
		i += 2
		switch {
		case v == 0:
			return "", "", ErrPath
		case v == '/' || v == '\\':
			if !slash(v) {
				return "", "", ErrPath
			}
		case v == '%':
			sawPercent = true
			writeEscape(&cur, v)
		case unreserved(v):
			cur.WriteByte(v)
		default:
			writeEscape(&cur, v)
		}
	}
	endSeg()
	if sawPercent {
		for _, s := range segs {
			if doubleEncoded(s) {
				return "", "", ErrPath
			}
		}
	}

	// Pass 2: dot-segments and empty segments.
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		if name, _, hasParam := strings.Cut(s, ";"); hasParam && (name == "." || name == "..") {
			return "", "", ErrPath
		}
		switch s {
		case ".":
			trailing = last
			continue
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
			continue
		case "":
			if last {
				trailing = true
				continue
			}
			if !opts.KeepEmptySegments {
				continue
			}
		}
		trailing = false
		out = append(out, s)
	}
	var b strings.Builder
	b.Grow(len(raw))
	for _, s := range out {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if trailing || len(out) == 0 {
		b.WriteByte('/')
	}
	escaped = b.String()
	return escaped, unescape(escaped), nil
}

// isCanonical reports whether raw needs no change: no escape of an unreserved character or
// in lower case, no dot-segment, no empty segment (unless kept), no backslash and no byte
// that must be escaped.
func isCanonical(raw string, opts PathOptions) bool {
	segStart := 0
	for i := 0; i <= len(raw); i++ {
		if i < len(raw) && raw[i] != '/' {
			c := raw[i]
			switch {
			case c == '%':
				if i+2 >= len(raw) || !isUpperHex(raw[i+1]) || !isUpperHex(raw[i+2]) {
					return false
				}
				v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
				if v == 0 || v == '/' || v == '\\' || v == '%' || unreserved(v) {
					return false
				}
				i += 2
			case c == '\\' || !pathByteOK(c):
				return false
			}
			continue
		}
		if i > 0 {
			seg := raw[segStart:i]
			switch {
			case seg == "" && i < len(raw) && !opts.KeepEmptySegments:
				return false // "//" inside the path
			case len(seg) > 0 && seg[0] == '.':
				name, _, _ := strings.Cut(seg, ";")
				if name == "." || name == ".." {
					return false
				}
			}
		}
		segStart = i + 1
	}
	return true
}

// doubleEncoded reports whether seg (one segment after pass 1: escapes of unreserved
// characters decoded, so hex digits stand raw) holds "%25" followed by "2e", "2f" or "5c" in
// either case: decoded once more upstream that is a dot, slash or backslash no check saw.
// It runs on the once-decoded segment, not on the raw bytes, because the digits after "%25"
// may themselves be escaped ("%252%45" is "%252E" once decoded).
func doubleEncoded(seg string) bool {
	for {
		i := strings.Index(seg, "%25")
		if i < 0 || len(seg) < i+5 {
			return false
		}
		switch strings.ToLower(seg[i+3 : i+5]) {
		case "2e", "2f", "5c":
			return true
		}
		seg = seg[i+3:]
	}
}

// unescape decodes every escape of a canonical escaped path (which holds only valid ones).
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pathByteOK reports whether c may stand unescaped in a path segment (RFC 3986 pchar minus
// "%": unreserved, sub-delims, ":" and "@").
func pathByteOK(c byte) bool {
	if unreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func writeEscape(b *strings.Builder, c byte) {
	const hexdig = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hexdig[c>>4])
	b.WriteByte(hexdig[c&15])
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
