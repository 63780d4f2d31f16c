// Package canonical computes the one view of a request that every decision and the upstream
// share: the canonical host (lower case, no trailing dot, IDNA A-labels, a default port
// dropped), the canonical path (unreserved characters decoded, escapes upper-cased,
// dot-segments removed, slashes merged, encoded slashes and backslashes by an explicit policy)
// and the Connection header reduced to hop-by-hop tokens. docs/security.md states the rules.
//
// The functions are pure and do not allocate when their input is already canonical, which
// is the common case.
package canonical

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Errors name why a value has no canonical form; the server answers 400 for each.
var (
	ErrHost = errors.New("invalid Host")
	ErrPath = errors.New("invalid request path")
)

// SlashPolicy says what happens to an encoded slash ("%2F") or backslash ("%5C", "\") in a
// request path.
type SlashPolicy uint8

const (
	// RejectSlashes refuses the request (400). The default: an upstream that decodes and
	// then normalises would see a different path than every check did.
	RejectSlashes SlashPolicy = iota
	// KeepSlashes keeps "%2F" and "%5C" encoded inside their segment (a raw "\" becomes
	// "%5C"); the upstream receives them encoded.
	KeepSlashes
	// UnescapeSlashes turns them into "/" separators before dot-segments are removed.
	UnescapeSlashes
)

// ParseSlashPolicy reads a config spelling: "reject", "keep" or "unescape".
func ParseSlashPolicy(s string) (SlashPolicy, bool) {
	switch s {
	case "reject":
		return RejectSlashes, true
	case "keep":
		return KeepSlashes, true
	case "unescape":
		return UnescapeSlashes, true
	}
	return 0, false
}

// PathOptions is the path policy.
type PathOptions struct {
	// Slashes is the encoded slash and backslash policy.
	Slashes SlashPolicy
	// KeepEmptySegments keeps "//" (by default empty segments are merged away, as nginx's
	// merge_slashes and Envoy's merge_slashes do).
	KeepEmptySegments bool
}

// Host splits an authority (a Host header or an absolute-form URI's host) into the
// canonical host name and port. The host is lower case, without a trailing dot, with
// Unicode labels in their IDNA A-label form; an IPv6 literal keeps its brackets in the
// compressed form. The port has no leading zeros and is "" when absent or when it is the
// default port of scheme ("http" 80, "https" 443). An empty authority is valid (HTTP/1.0).
func Host(authority, scheme string) (host, port string, err error) {
	if authority == "" {
		return "", "", nil
	}
	host, port, err = splitPort(authority)
	if err != nil || host == "" {
		return "", "", ErrHost
	}
	if port != "" {
		if port, err = canonicalPort(port); err != nil {
			return "", "", err
		}
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			port = ""
		}
	}
	if host[0] == '[' {
		host, err = ipv6Literal(host)
		return host, port, err
	}
	host, err = Hostname(host)
	return host, port, err
}

// Authority joins a canonical host and port back into a Host value.
func Authority(host, port string) string {
	if port == "" {
		return host
	}
	return host + ":" + port
}

func splitPort(a string) (host, port string, err error) {
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", ErrHost
		}
		rest := a[end+1:]
		if rest == "" {
			return a, "", nil
		}
		if rest[0] != ':' {
			return "", "", ErrHost
		}
		return a[:end+1], rest[1:], nil
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		return a[:i], a[i+1:], nil
	}
	return a, "", nil
}

func canonicalPort(p string) (string, error) {
	if p == "" || len(p) > 5 {
		return "", ErrHost
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return "", ErrHost
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 || n > 65535 {
		return "", ErrHost
	}
	if p[0] != '0' {
		return p, nil
	}
	return strconv.Itoa(n), nil
}

func ipv6Literal(h string) (string, error) {
	inner := h[1 : len(h)-1]
	if inner == "" || strings.ContainsAny(inner, "%]") {
		return "", ErrHost // no zone identifiers, no nested brackets
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is6() {
		return "", ErrHost
	}
	return "[" + ip.String() + "]", nil
}

// Hostname returns the canonical form of a host name without a port: lower case, one
// trailing dot removed, Unicode labels as IDNA A-labels. It refuses empty labels, bytes
// that cannot be in a host name and names IDNA rejects. Configured host names go through it
// too, so both sides of every comparison have the same spelling.
func Hostname(h string) (string, error) {
	if h == "" {
		return "", ErrHost
	}
	if h[len(h)-1] == '.' {
		h = h[:len(h)-1]
		if h == "" || h[len(h)-1] == '.' {
			return "", ErrHost
		}
	}
	ascii, lower := true, true
	prevDot := true
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 0x80:
			ascii = false
			prevDot = false
			continue
		case c == '.':
			if prevDot {
				return "", ErrHost // an empty label: "a..b", ".a"
			}
			prevDot = true
			continue
		case c >= 'A' && c <= 'Z':
			lower = false
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
		default:
			// No percent-encoding, userinfo, path, query, space or control bytes in a host.
			return "", ErrHost
		}
		prevDot = false
	}
	if ascii {
		if !lower {
			h = strings.ToLower(h)
		}
		if !strings.Contains(h, "xn--") {
			return h, nil
		}
	}
	if !utf8.ValidString(h) {
		return "", ErrHost
	}
	a, err := idnaProfile.ToASCII(h)
	if err != nil || a == "" {
		return "", ErrHost
	}
	// The A-label form must itself be a canonical ASCII name: a Unicode name that maps to a
	// space or to something that maps again has no canonical form.
	for i := 0; i < len(a); i++ {
		if c := a[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", ErrHost
		}
	}
	if again, err := idnaProfile.ToASCII(a); err != nil || again != a || strings.Contains(a, "..") || strings.HasSuffix(a, ".") || strings.HasPrefix(a, ".") {
		return "", ErrHost
	}
	return a, nil
}

// idnaProfile maps Unicode host names to A-labels as a browser's URL parser does (UTS #46
// mapping, which also lower-cases), without DNS length or STD3 rules, which would refuse
// names such as "_dmarc" that a Host header may carry.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false), idna.VerifyDNSLength(false))
