package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// directives is a parsed Cache-Control field (RFC 9111 §5.2). Integer directives are -1 when
// absent.
type directives struct {
	noStore, noCache, private, public  bool
	mustRevalidate, proxyRevalidate    bool
	maxAge, sMaxAge                    int64
	staleWhileRevalidate, staleIfError int64
	present                            bool
}

// maxDelta bounds every delta-seconds value (RFC 9111 §1.2.2: 2^31 is "infinity").
const maxDelta = 1 << 31

// parseCacheControl parses every Cache-Control field line. Unknown directives are ignored;
// a malformed delta-seconds counts as 0 (RFC 9111 §4.2.1: treat as stale), and a directive
// given twice keeps its smallest value.
func parseCacheControl(values []string) directives {
	d := directives{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1}
	for _, line := range values {
		for line != "" {
			var item string
			item, line = nextDirective(line)
			name, val, hasVal := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			d.present = true
			val = strings.TrimSpace(val)
			switch strings.ToLower(name) {
			case "no-store":
				d.noStore = true
			case "no-cache":
				d.noCache = true // also the field-qualified form: conservative
			case "private":
				d.private = true // also the field-qualified form: conservative
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "max-age":
				d.maxAge = minDelta(d.maxAge, deltaSeconds(val, hasVal))
			case "s-maxage":
				d.sMaxAge = minDelta(d.sMaxAge, deltaSeconds(val, hasVal))
			case "stale-while-revalidate":
				d.staleWhileRevalidate = minDelta(d.staleWhileRevalidate, deltaSeconds(val, hasVal))
			case "stale-if-error":
				d.staleIfError = minDelta(d.staleIfError, deltaSeconds(val, hasVal))
			}
		}
	}
	return d
}

// nextDirective splits off the first comma-separated item, honouring quoted strings.
func nextDirective(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func minDelta(cur, v int64) int64 {
	if cur < 0 || v < cur {
		return v
	}
	return cur
}

// deltaSeconds parses a delta-seconds value (quotes tolerated); anything else is 0.
func deltaSeconds(v string, hasVal bool) int64 {
	if !hasVal {
		return 0
	}
	v = strings.Trim(v, `"`)
	if v == "" {
		return 0
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
		if n >= maxDelta {
			n = maxDelta
		}
	}
	return n
}

// policy is the route's storage policy, built from its cache block.
type policy struct {
	ttl          int64 // seconds; -1 when ttlSecs is not set
	swr, sie     int64 // configured stale windows, seconds
	earlyRefresh int64 // nanoseconds
}

// heuristicStatus are the status codes RFC 9110 §15.1 calls heuristically cacheable (501 is
// left out: a 5xx is the stale-if-error signal, not content). Other statuses are stored only
// with explicit freshness from the upstream.
func heuristicStatus(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414:
		return true
	}
	return false
}

// explicitStatus are the statuses stored when the upstream gives explicit freshness.
func explicitStatus(code int) bool {
	return heuristicStatus(code) || code == 302 || code == 303 || code == 307
}

// verdict is the outcome of deciding whether a response may be stored.
type verdict struct {
	ok         bool
	reason     string
	freshUntil int64 // unix ns
	swrUntil   int64
	sieUntil   int64
	initialAge int64 // ns
	authOK     bool
	date       time.Time
}

// decide applies RFC 9111 §3 (storing) and §4.2 (freshness) to a response received at now.
// auth reports whether the request carried Authorization (§3.5).
func (p *policy) decide(auth bool, status int, h http.Header, now time.Time) verdict {
	if !explicitStatus(status) {
		return verdict{reason: "status"}
	}
	cc := parseCacheControl(h["Cache-Control"])
	switch {
	case cc.noStore:
		return verdict{reason: "no-store"}
	case cc.private:
		return verdict{reason: "private"}
	case cc.noCache:
		return verdict{reason: "no-cache"}
	case len(h["Set-Cookie"]) > 0:
		return verdict{reason: "set-cookie"}
	case len(h["Trailer"]) > 0:
		return verdict{reason: "trailer"}
	}
	for _, v := range h["Vary"] {
		if strings.Contains(v, "*") {
			return verdict{reason: "vary-star"}
		}
	}
	authOK := cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate
	if auth && !authOK {
		return verdict{reason: "authorization"}
	}
	date := now
	if dv := h.Get("Date"); dv != "" {
		if t, err := http.ParseTime(dv); err == nil {
			date = t
		}
	}
	var lifetime int64 // seconds
	explicit := true
	switch {
	case cc.sMaxAge >= 0:
		lifetime = cc.sMaxAge
	case cc.maxAge >= 0:
		lifetime = cc.maxAge
	case len(h["Expires"]) > 0:
		exp, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			return verdict{reason: "expires-invalid"}
		}
		lifetime = int64(exp.Sub(date) / time.Second)
	default:
		explicit = false
		if p.ttl < 0 {
			return verdict{reason: "no-freshness"}
		}
		lifetime = p.ttl
	}
	if !explicit && !heuristicStatus(status) {
		return verdict{reason: "status"}
	}
	if p.ttl >= 0 && lifetime > p.ttl {
		lifetime = p.ttl
	}
	if lifetime <= 0 {
		return verdict{reason: "zero-lifetime"}
	}
	// Age (RFC 9111 §4.2.3): the larger of the apparent age and the upstream's Age.
	apparent := max(now.Sub(date), 0)
	if av := h.Get("Age"); av != "" {
		if a := deltaSeconds(av, true); time.Duration(a)*time.Second > apparent {
			apparent = time.Duration(a) * time.Second
		}
	}
	remaining := time.Duration(lifetime)*time.Second - apparent
	if remaining <= 0 {
		return verdict{reason: "already-stale"}
	}
	v := verdict{ok: true, initialAge: int64(apparent), authOK: authOK, date: date}
	v.freshUntil = now.Add(remaining).UnixNano()
	// Stale serving (RFC 9111 §4.2.4): never when must-revalidate, proxy-revalidate or
	// s-maxage forbid it, except through the response's own RFC 5861 directives.
	var swr, sie int64
	if !cc.mustRevalidate && !cc.proxyRevalidate && cc.sMaxAge < 0 {
		swr, sie = p.swr, p.sie
	}
	swr = max(swr, cc.staleWhileRevalidate)
	sie = max(sie, cc.staleIfError)
	v.swrUntil = v.freshUntil + swr*int64(time.Second)
	v.sieUntil = v.freshUntil + sie*int64(time.Second)
	return v
}

// requestNoStore reports a request Cache-Control: no-store (RFC 9111 §5.2.1.5).
func requestNoStore(h http.Header) bool {
	v, ok := h["Cache-Control"]
	if !ok {
		return false
	}
	return parseCacheControl(v).noStore
}

// formatAge renders an Age value.
func formatAge(ns int64) string {
	if ns < 0 {
		ns = 0
	}
	return strconv.FormatInt(ns/int64(time.Second), 10)
}
