package compress

import "strings"

// codings are the content codings this module can produce, by index.
var codings = [...]string{"br", "zstd", "gzip", "deflate"}

// codingIndex returns the index of a coding name in codings, or -1.
func codingIndex(name string) int {
	for i, c := range codings {
		if c == name {
			return i
		}
	}
	return -1
}

// negotiate picks the coding for an Accept-Encoding header (all its field lines). prefs are
// coding indexes in the server's order of preference. The client's q-values decide; on a
// tie the server's order wins (as Caddy's encode). A coding the client does not name is
// acceptable only through "*". It returns -1 when no offered coding is acceptable (or the
// client sent no Accept-Encoding: RFC 9110 allows any coding then, but like nginx and Caddy
// the response stays identity, since old clients omit the header). It does not allocate.
func negotiate(values []string, prefs []int) int {
	var q [len(codings)]int // -1: not named; else q in thousandths
	for i := range q {
		q[i] = -1
	}
	star := -1
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			qv, ok := parseQ(params)
			if !ok {
				continue
			}
			switch {
			case name == "*":
				star = max(star, qv)
			case strings.EqualFold(name, "x-gzip"):
				q[2] = max(q[2], qv)
			default:
				for i, c := range codings {
					if strings.EqualFold(name, c) {
						q[i] = max(q[i], qv)
					}
				}
			}
		}
	}
	best, bestQ := -1, 0
	for _, i := range prefs {
		qi := q[i]
		if qi < 0 {
			qi = star
		}
		if qi > bestQ {
			best, bestQ = i, qi
		}
	}
	return best
}

// parseQ reads the q parameter of one Accept-Encoding item's parameters (";q=0.5"),
// returning thousandths (1000 when absent). ok is false for a malformed q-value, which
// makes the item ignored.
func parseQ(params string) (int, bool) {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		return parseQValue(strings.TrimSpace(val))
	}
	return 1000, true
}

// parseQValue parses an RFC 9110 qvalue: "0", "0.5", "1", "1.000" (at most three decimals).
func parseQValue(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	if len(s) == 1 {
		return whole * 1000, true
	}
	if s[1] != '.' {
		return 0, false
	}
	frac, scale := 0, 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		frac += int(c-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return 0, false
	}
	return whole*1000 + frac, true
}
