package router

import (
	"net/http"
	"regexp"
	"strings"
)

// ValueMatcher matches a header, query or cookie value: a full-string (anchored) regular
// expression, or exact comparison when the text is not a valid expression (docs/proxy.md).
type ValueMatcher struct {
	exact string
	re    *regexp.Regexp
}

// NewValueMatcher compiles a value pattern.
func NewValueMatcher(pattern string) ValueMatcher {
	if isLiteral(pattern) {
		return ValueMatcher{exact: pattern}
	}
	if re, err := regexp.Compile(`^(?:` + pattern + `)$`); err == nil {
		return ValueMatcher{re: re}
	}
	return ValueMatcher{exact: pattern}
}

func isLiteral(p string) bool {
	return !strings.ContainsAny(p, `\.+*?()|[]{}^$`)
}

// Match reports whether v matches.
func (m ValueMatcher) Match(v string) bool {
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.exact
}

// Match is a compiled routes[].match: every set condition must hold.
type Match struct {
	// Path is nil when the entry matches any path.
	Path    *Glob
	Methods []string
	Headers map[string]ValueMatcher
	Query   map[string]ValueMatcher
	Cookies map[string]ValueMatcher
}

// Matches reports whether r satisfies every condition.
func (m *Match) Matches(r *http.Request) bool {
	if m.Path != nil && !m.Path.Match(r.URL.Path) {
		return false
	}
	if len(m.Methods) > 0 {
		ok := false
		for _, meth := range m.Methods {
			if strings.EqualFold(meth, r.Method) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for name, vm := range m.Headers {
		if !vm.Match(r.Header.Get(name)) {
			return false
		}
	}
	if len(m.Query) > 0 {
		q := r.URL.Query()
		for name, vm := range m.Query {
			if !vm.Match(q.Get(name)) {
				return false
			}
		}
	}
	for name, vm := range m.Cookies {
		c, err := r.Cookie(name)
		v := ""
		if err == nil {
			v = c.Value
		}
		if !vm.Match(v) {
			return false
		}
	}
	return true
}
