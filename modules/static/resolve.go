package static

import "strings"

// verdict is what resolve decides about a request path.
type verdict uint8

const (
	// pathOK: rel is a safe, root-relative name.
	pathOK verdict = iota
	// pathBad: the path tries to leave the root or is ambiguous across platforms (a ".."
	// segment, a NUL byte, a backslash). It is answered 400 and never touches the disk.
	pathBad
)

// resolve turns the decoded URL path below a mount (the part after the stripped prefix, with
// or without a leading slash) into a slash-separated name relative to the root: "" for the
// root itself, "assets/app.js" for a file. Empty and "." segments are dropped (so "//a" and
// "/./a" name "a"). dot reports a segment that starts with '.' (a dotfile or dot directory).
//
// The result never starts with '/', never contains a ".." segment, a backslash or a NUL byte,
// and is already clean, so it cannot name anything outside the root; os.Root then also
// refuses symlinks that leave it. The common case (a clean path) does not allocate.
func resolve(p string) (rel string, dot bool, v verdict) {
	clean := true
	segs := 0
	for i := 0; i < len(p); {
		j := strings.IndexByte(p[i:], '/')
		var seg string
		if j < 0 {
			seg, j = p[i:], len(p)
		} else {
			seg, j = p[i:i+j], i+j
		}
		switch {
		case seg == "" || seg == ".":
			// The leading slash, a trailing slash and "//" produce empty segments; only
			// the ones that are not the very first or very last character need a rebuild.
			if seg == "." || (i != 0 && j != len(p)) {
				clean = false
			}
		case seg == "..":
			return "", false, pathBad
		default:
			if strings.IndexByte(seg, 0) >= 0 || strings.IndexByte(seg, '\\') >= 0 {
				return "", false, pathBad
			}
			if seg[0] == '.' {
				dot = true
			}
			segs++
		}
		i = j + 1
	}
	if segs == 0 {
		return "", dot, pathOK
	}
	if clean {
		rel = p
		if rel[0] == '/' {
			rel = rel[1:]
		}
		if rel[len(rel)-1] == '/' {
			rel = rel[:len(rel)-1]
		}
		return rel, dot, pathOK
	}
	var b strings.Builder
	b.Grow(len(p))
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	return b.String(), dot, pathOK
}

// hasEncodedSlash reports whether an escaped path holds "%2f" (any case): an encoded slash
// inside a segment. (An encoded backslash decodes to a backslash, which resolve refuses.)
func hasEncodedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		if raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F') {
			return true
		}
	}
	return false
}
