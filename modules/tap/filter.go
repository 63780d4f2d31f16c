package tap

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// Limits on what one tap may ask for.
const (
	// MaxHeaders is the number of header names one tap may capture.
	MaxHeaders = 16
	// MaxFilterValues is the number of values one filter may list.
	MaxFilterValues = 32
	// MaxHeaderValue is the longest header value shown; longer values are cut.
	MaxHeaderValue = 1024
)

// Redacted replaces the value of headers that carry credentials.
const Redacted = "[redacted]"

// redactedHeaders are never shown: the tap is a debugging tool, not a credential dump.
var redactedHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// Filter selects the events a tap receives. Values inside one filter are alternatives (OR);
// different filters must all match (AND). An empty filter matches everything.
type Filter struct {
	// Sites are site labels ("api.example.com:443", "*") or bare hosts.
	Sites []string
	// Routes are route names ("/api", "routes[0]"); "-" selects requests no route took.
	Routes []string
	// Paths are path prefixes (plain string prefixes: "/api" also matches "/apix").
	Paths []string
	// Methods are upper-case request methods.
	Methods []string
	// Statuses are status classes (1..5 for 1xx..5xx) or exact codes (100..599).
	Statuses []int
	// Headers are the canonical names of the headers to capture from the request and the
	// response.
	Headers []string
}

// filterParams are the query parameters ParseFilter knows.
var filterParams = []string{"site", "route", "path", "method", "status", "header"}

// ParseFilter reads a filter from the query of GET /tap. Every parameter may be repeated or
// hold a comma-separated list.
func ParseFilter(q url.Values) (*Filter, error) {
	f := &Filter{}
	for k := range q {
		if !slices.Contains(filterParams, k) {
			return nil, fmt.Errorf("unknown parameter %q (known: %s)", k, strings.Join(filterParams, ", "))
		}
	}
	var err error
	list := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		if len(out) > MaxFilterValues && err == nil {
			err = fmt.Errorf("%s: at most %d values", name, MaxFilterValues)
		}
		return out
	}
	f.Sites = list("site")
	for i, s := range f.Sites {
		f.Sites[i] = strings.ToLower(s)
	}
	f.Routes = list("route")
	f.Paths = list("path")
	for _, p := range f.Paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("path %q: must start with /", p)
		}
	}
	for _, m := range list("method") {
		m = strings.ToUpper(m)
		if !validToken(m) {
			return nil, fmt.Errorf("method %q: not a valid method", m)
		}
		f.Methods = append(f.Methods, m)
	}
	for _, s := range list("status") {
		code, perr := parseStatus(s)
		if perr != nil {
			return nil, perr
		}
		f.Statuses = append(f.Statuses, code)
	}
	for _, h := range list("header") {
		if !validToken(h) {
			return nil, fmt.Errorf("header %q: not a valid header name", h)
		}
		h = textproto.CanonicalMIMEHeaderKey(h)
		if !slices.Contains(f.Headers, h) {
			f.Headers = append(f.Headers, h)
		}
	}
	if len(f.Headers) > MaxHeaders {
		return nil, fmt.Errorf("header: at most %d names", MaxHeaders)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// parseStatus reads "5xx" (class, returned as 5) or "404" (exact code).
func parseStatus(s string) (int, error) {
	ls := strings.ToLower(s)
	if len(ls) == 3 && strings.HasSuffix(ls, "xx") && ls[0] >= '1' && ls[0] <= '5' {
		return int(ls[0] - '0'), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 || len(s) != 3 {
		return 0, fmt.Errorf("status %q: want a class (1xx … 5xx) or a code (100 … 599)", s)
	}
	return n, nil
}

// validToken reports whether s is an RFC 9110 token (method and header names) of at most
// 64 bytes.
func validToken(s string) bool { return len(s) <= 64 && core.IsToken(s) }

// Match reports whether ev passes the filter.
func (f *Filter) Match(ev *Event) bool {
	if len(f.Sites) > 0 && !f.matchSite(ev.Site) {
		return false
	}
	if len(f.Routes) > 0 {
		r := ev.Route
		if r == "" {
			r = "-"
		}
		if !slices.Contains(f.Routes, r) {
			return false
		}
	}
	if len(f.Paths) > 0 {
		ok := false
		for _, p := range f.Paths {
			if strings.HasPrefix(ev.Path, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Methods) > 0 && !slices.Contains(f.Methods, ev.Method) {
		return false
	}
	if len(f.Statuses) > 0 {
		ok := false
		for _, s := range f.Statuses {
			if s == ev.Status || (s < 10 && ev.Status/100 == s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchSite accepts the site's label or, for a site with a host, the bare host.
func (f *Filter) matchSite(label string) bool {
	host := label
	if i := strings.LastIndexByte(label, ':'); i > 0 {
		host = label[:i]
	}
	for _, s := range f.Sites {
		if s == label || s == host {
			return true
		}
	}
	return false
}

// headerValue returns the value of name in h as shown by the tap: values joined with ", ",
// credentials redacted, cut at MaxHeaderValue bytes.
func headerValue(h http.Header, name string) string {
	vs := h[name]
	if len(vs) == 0 {
		return ""
	}
	if slices.Contains(redactedHeaders, name) {
		return Redacted
	}
	v := vs[0]
	if len(vs) > 1 {
		v = strings.Join(vs, ", ")
	}
	if len(v) > MaxHeaderValue {
		v = v[:MaxHeaderValue]
	}
	return v
}
