package h1engine

import "net/url"

// pathByte marks the bytes an origin-form path may hold for parseOrigin: those that
// url.URL.EscapedPath writes as they are (unreserved, and the sub-delims and ':' '@' that
// net/url leaves unescaped in a path). '%' and every other byte send the target to
// url.ParseRequestURI.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// parseOrigin fills u as url.ParseRequestURI(target) would when target is an origin-form
// path of pathByte bytes, with an optional query without control bytes, and
// reports whether it did; false leaves u untouched (the caller parses with net/url).
func parseOrigin(u *url.URL, target string) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	path, query := target, ""
	hasQuery := false
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c == '?' {
			path, query, hasQuery = target[:i], target[i+1:], true
			break
		}
		if !pathByte[c] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false // net/url refuses control bytes
		}
	}
	// As url.ParseRequestURI: a target whose only '?' ends it sets ForceQuery; otherwise
	// the query is what follows the first '?'.
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}
