// Package router holds the request-matching primitives shared by the core and the handler
// modules: path globs, longest-prefix tables and the routes[] matcher.
package router

import (
	"fmt"
	"strings"
)

// Glob is a compiled path pattern:
//   - a literal segment matches itself;
//   - "*" matches exactly one segment, and "*" inside a segment ("*.js") matches within it;
//   - "**" matches any number of segments, including none, so "/api/**" matches "/api",
//     "/api/" and everything below "/api/".
type Glob struct {
	pattern string
	segs    []string
	// literal is set when the pattern has no wildcard at all.
	literal bool
	prefix  string
}

// CompileGlob compiles a path pattern. It must start with "/".
func CompileGlob(pattern string) (*Glob, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("path pattern %q must start with \"/\"", pattern)
	}
	g := &Glob{pattern: pattern, segs: strings.Split(pattern[1:], "/")}
	g.literal = !strings.Contains(pattern, "*")
	for i, s := range g.segs {
		if strings.Contains(s, "**") && s != "**" {
			return nil, fmt.Errorf("path pattern %q: \"**\" must be a whole segment", pattern)
		}
		_ = i
	}
	// The literal prefix: the segments before the first wildcard segment.
	var lit []string
	for _, s := range g.segs {
		if strings.Contains(s, "*") {
			break
		}
		lit = append(lit, s)
	}
	g.prefix = "/" + strings.Join(lit, "/")
	if g.literal {
		g.prefix = pattern
	} else {
		g.prefix = strings.TrimSuffix(g.prefix, "/")
	}
	return g, nil
}

// String returns the pattern.
func (g *Glob) String() string { return g.pattern }

// LiteralPrefix is the part of the pattern before the first wildcard, without a trailing
// slash ("/api" for "/api/**"); for a pattern without wildcards it is the whole pattern.
func (g *Glob) LiteralPrefix() string { return g.prefix }

// Match reports whether path (without query) matches the pattern. It does not allocate.
func (g *Glob) Match(path string) bool {
	if g.literal {
		return path == g.pattern
	}
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	return matchSegs(g.segs, path[1:])
}

// matchSegs matches pattern segments against the rest of a path ("a/b/c").
func matchSegs(segs []string, rest string) bool {
	for i, s := range segs {
		if s == "**" {
			if i == len(segs)-1 {
				return true
			}
			// Try every split point for the remaining segments.
			for {
				if matchSegs(segs[i+1:], rest) {
					return true
				}
				j := strings.IndexByte(rest, '/')
				if j < 0 {
					return false
				}
				rest = rest[j+1:]
			}
		}
		var seg string
		j := strings.IndexByte(rest, '/')
		last := i == len(segs)-1
		if j < 0 {
			seg, rest = rest, ""
			if !last {
				// The path ran out; only trailing "**" segments can still match.
				if !matchSeg(s, seg) {
					return false
				}
				for _, t := range segs[i+1:] {
					if t != "**" {
						return false
					}
				}
				return true
			}
		} else {
			seg, rest = rest[:j], rest[j+1:]
			if last {
				// "/a/*" does not match "/a/b/c"; but "/a/b" pattern vs "/a/b/" path: the
				// trailing empty segment makes them differ, as for literals.
				return false
			}
		}
		if !matchSeg(s, seg) {
			return false
		}
	}
	return rest == ""
}

// matchSeg matches one segment against a pattern segment where "*" matches any run of
// characters other than "/".
func matchSeg(pat, s string) bool {
	if pat == "*" {
		return true
	}
	if !strings.Contains(pat, "*") {
		return pat == s
	}
	// Simple wildcard match with backtracking over '*'.
	p, t := 0, 0
	star, mark := -1, 0
	for t < len(s) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, t
			p++
		case p < len(pat) && pat[p] == s[t]:
			p++
			t++
		case star >= 0:
			p = star + 1
			mark++
			t = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}
