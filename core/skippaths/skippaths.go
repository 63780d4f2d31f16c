// Package skippaths implements every module's `skipPaths` list (the guards, rateLimit,
// cache and logging share this one rule; docs/auth.md): each entry is an exact path ("/login") or a prefix
// ending in "/**" ("/public/**"), which also matches the prefix itself ("/public") and the
// prefix with a trailing slash ("/public/"). There are no other wildcards.
//
// The core makes every request path canonical before any module runs (docs/security.md).
// As a second line, a path that is not in canonical form (it holds "//", a "." or ".."
// segment, or a backslash) never matches, so "/public/../admin" cannot borrow the exemption
// of "/public/**": the guard stays on (fail closed).
package skippaths

import (
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// Matcher answers whether a request path is exempt. The zero value and nil match nothing.
type Matcher struct {
	exact    []string
	prefixes []string // without the trailing "/**"; "" for "/**" (everything)
}

// New builds a Matcher from a decoded skipPaths list, recording problems at path
// ("sites[0].jwtAuth.skipPaths"). An entry that does not start with "/" is an error; a "*"
// anywhere but a trailing "/**" is matched literally, with a warning.
func New(list []string, path string, d *config.Diagnostics) *Matcher {
	if len(list) == 0 {
		return nil
	}
	m := &Matcher{}
	for i, e := range list {
		p := config.Index(path, i)
		if !strings.HasPrefix(e, "/") {
			d.Errorf(p, "must start with \"/\" (an exact path or a \"/prefix/**\"), got %q", e)
			continue
		}
		if pre, ok := strings.CutSuffix(e, "/**"); ok {
			if strings.Contains(pre, "*") {
				d.Warnf(p, "only a trailing \"/**\" is a wildcard; the other \"*\" in %q are matched literally", e)
			}
			m.prefixes = append(m.prefixes, pre)
			continue
		}
		if strings.Contains(e, "*") {
			d.Warnf(p, "only a trailing \"/**\" is a wildcard; %q is matched literally", e)
		}
		m.exact = append(m.exact, e)
	}
	return m
}

// Match reports whether the request path p is exempt. It does not allocate.
func (m *Matcher) Match(p string) bool {
	if m == nil || !Canonical(p) {
		return false
	}
	for _, e := range m.exact {
		if p == e {
			return true
		}
	}
	for _, pre := range m.prefixes {
		if len(p) < len(pre) || p[:len(pre)] != pre {
			continue
		}
		if len(p) == len(pre) || p[len(pre)] == '/' {
			return true
		}
	}
	return false
}

// Empty reports whether the matcher exempts nothing.
func (m *Matcher) Empty() bool { return m == nil || len(m.exact)+len(m.prefixes) == 0 }

// Canonical reports whether p is an absolute path with no empty, "." or ".." segment and no
// backslash: the only form an exemption may apply to.
func Canonical(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c == '\\' || c == 0 {
				return false
			}
			if c != '/' {
				continue
			}
		}
		seg := p[segStart:i]
		last := i == len(p)
		switch {
		case seg == "." || seg == "..":
			return false
		case seg == "" && !last && i != 1:
			return false // "//"
		case seg == "" && i == 1 && len(p) > 1:
			return false // leading "//"
		}
		segStart = i + 1
	}
	return true
}
