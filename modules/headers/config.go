package headers

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
	"github.com/conduitproxy/conduit/core/config"
)

// Security is the site's `securityHeaders` key: true, false, or an object.
type Security struct {
	// Enabled is false for `securityHeaders: false` (and when the key is absent).
	Enabled bool
	// HSTSMaxAge is Strict-Transport-Security's max-age; 0 sends no HSTS.
	HSTSMaxAge uint64
	// HSTSIncludeSubDomains adds includeSubDomains (default true when HSTS is set).
	HSTSIncludeSubDomains bool
	// HSTSPreload adds preload.
	HSTSPreload bool
	// CSP is Content-Security-Policy ("" for none).
	CSP string
	// XFrameOptions is DENY or SAMEORIGIN (default SAMEORIGIN).
	XFrameOptions string
	// ReferrerPolicy is Referrer-Policy (default strict-origin-when-cross-origin).
	ReferrerPolicy string
	// PermissionsPolicy is Permissions-Policy ("" for none).
	PermissionsPolicy string
	// AllowedHosts is the Host allowlist (nil: the core's default rule).
	AllowedHosts []string
}

// securityObject is the strict shape of the object form, including the obsolete names the
// older README used (hsts, contentSecurityPolicy, frameOptions), read as aliases.
type securityObject struct {
	HSTSMaxAgeSecs        *uint64     `json:"hstsMaxAgeSecs"`
	HSTSIncludeSubDomains *bool       `json:"hstsIncludeSubDomains"`
	HSTSPreload           *bool       `json:"hstsPreload"`
	CSP                   *string     `json:"csp"`
	XFrameOptions         *string     `json:"xFrameOptions"`
	ReferrerPolicy        *string     `json:"referrerPolicy"`
	PermissionsPolicy     *string     `json:"permissionsPolicy"`
	AllowedHosts          []string    `json:"allowedHosts"`
	HSTS                  config.Node `json:"hsts"`
	ContentSecurityPolicy *string     `json:"contentSecurityPolicy"`
	FrameOptions          *string     `json:"frameOptions"`
}

const (
	defaultFrameOptions   = "SAMEORIGIN"
	defaultReferrerPolicy = "strict-origin-when-cross-origin"
)

var referrerPolicies = []string{"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url"}

// UnmarshalConfig implements config.Unmarshaler.
func (s *Security) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	s.XFrameOptions = defaultFrameOptions
	s.ReferrerPolicy = defaultReferrerPolicy
	var o securityObject
	if !config.DecodeToggle(n, path, d, "true, false or an object {hstsMaxAgeSecs, csp, xFrameOptions, referrerPolicy, permissionsPolicy, allowedHosts, …}", &s.Enabled, &o) {
		return
	}

	// Obsolete names first, so that the current names win when both are present.
	if o.HSTS != nil {
		p := config.Join(path, "hsts")
		if h, ok := parseObsoleteHSTS(o.HSTS, p, d); ok {
			s.HSTSMaxAge, s.HSTSIncludeSubDomains, s.HSTSPreload = h.maxAge, h.sub, h.preload
			deprecated(d, p, "hsts", fmt.Sprintf("hstsMaxAgeSecs: %d, hstsIncludeSubDomains: %t, hstsPreload: %t", h.maxAge, h.sub, h.preload), o.HSTSMaxAgeSecs != nil)
		}
	}
	if o.ContentSecurityPolicy != nil {
		s.CSP = *o.ContentSecurityPolicy
		deprecated(d, config.Join(path, "contentSecurityPolicy"), "contentSecurityPolicy", "csp", o.CSP != nil)
	}
	if o.FrameOptions != nil {
		s.XFrameOptions = *o.FrameOptions
		deprecated(d, config.Join(path, "frameOptions"), "frameOptions", "xFrameOptions", o.XFrameOptions != nil)
	}

	if o.HSTSMaxAgeSecs != nil {
		s.HSTSMaxAge = *o.HSTSMaxAgeSecs
		s.HSTSIncludeSubDomains = true
		s.HSTSPreload = false
	}
	if o.HSTSIncludeSubDomains != nil {
		s.HSTSIncludeSubDomains = *o.HSTSIncludeSubDomains
	}
	if o.HSTSPreload != nil {
		s.HSTSPreload = *o.HSTSPreload
	}
	if s.HSTSMaxAge == 0 && (o.HSTSPreload != nil || o.HSTSIncludeSubDomains != nil) {
		d.Warnf(path, "hstsIncludeSubDomains/hstsPreload have no effect without hstsMaxAgeSecs")
	}
	if s.HSTSPreload && (s.HSTSMaxAge < 31536000 || !s.HSTSIncludeSubDomains) {
		d.Warnf(config.Join(path, "hstsPreload"), "the HSTS preload list requires hstsMaxAgeSecs ≥ 31536000 and hstsIncludeSubDomains")
	}
	if o.CSP != nil {
		s.CSP = *o.CSP
	}
	if o.XFrameOptions != nil {
		s.XFrameOptions = *o.XFrameOptions
	}
	if o.ReferrerPolicy != nil {
		s.ReferrerPolicy = *o.ReferrerPolicy
	}
	if o.PermissionsPolicy != nil {
		s.PermissionsPolicy = *o.PermissionsPolicy
	}

	fo := strings.ToUpper(strings.TrimSpace(s.XFrameOptions))
	if fo != "DENY" && fo != "SAMEORIGIN" {
		key := "xFrameOptions"
		if o.XFrameOptions == nil {
			key = "frameOptions"
		}
		d.Errorf(config.Join(path, key), "must be DENY or SAMEORIGIN, got %q", s.XFrameOptions)
	}
	s.XFrameOptions = fo
	for _, rp := range strings.Split(s.ReferrerPolicy, ",") {
		rp = strings.TrimSpace(strings.ToLower(rp))
		known := false
		for _, k := range referrerPolicies {
			known = known || k == rp
		}
		if !known {
			d.Errorf(config.Join(path, "referrerPolicy"), "unknown policy %q (one of %s)", rp, strings.Join(referrerPolicies, ", "))
		}
	}
	checkValue(d, config.Join(path, "csp"), s.CSP)
	checkValue(d, config.Join(path, "permissionsPolicy"), s.PermissionsPolicy)

	if o.AllowedHosts != nil {
		s.AllowedHosts = []string{}
		for i, h := range o.AllowedHosts {
			p := config.Index(config.Join(path, "allowedHosts"), i)
			nh, ok := normalizeHostPattern(h)
			if !ok {
				d.Errorf(p, "must be a host name (\"example.com\", \"*.example.com\", \"[::1]\") or \"*\", got %q", h)
				continue
			}
			s.AllowedHosts = append(s.AllowedHosts, nh)
		}
		if len(o.AllowedHosts) == 0 {
			d.Warnf(config.Join(path, "allowedHosts"), "is empty: only the site's own host is accepted")
		}
	}
}

// deprecated records the warning for an obsolete name. The text says "unknown key" because
// the current schema no longer knows the name; the value is still honoured.
func deprecated(d *config.Diagnostics, path, old, now string, shadowed bool) {
	if shadowed {
		d.Warnf(path, "deprecated key %q (an unknown key in the current schema) is ignored because its replacement is also set; remove it", old)
		return
	}
	d.Warnf(path, "deprecated key %q (an unknown key in the current schema): read as %s; rename it", old, now)
}

type hsts struct {
	maxAge       uint64
	sub, preload bool
}

// parseObsoleteHSTS reads the old `hsts` value: a header value such as
// "max-age=63072000; includeSubDomains; preload", a number of seconds, or a boolean
// (true = one year with includeSubDomains).
func parseObsoleteHSTS(n config.Node, path string, d *config.Diagnostics) (hsts, bool) {
	switch v := n.(type) {
	case bool:
		if v {
			return hsts{maxAge: 31536000, sub: true}, true
		}
		return hsts{}, true
	case string:
		h, err := parseHSTSValue(v)
		if err != nil {
			d.Errorf(path, "%v", err)
			return hsts{}, false
		}
		return h, true
	default:
		if f, ok := config.Number(n); ok && f >= 0 && f == float64(uint64(f)) {
			return hsts{maxAge: uint64(f), sub: true}, true
		}
		d.Errorf(path, "must be a Strict-Transport-Security value such as \"max-age=31536000; includeSubDomains\", got %s", config.Describe(n))
		return hsts{}, false
	}
}

// parseHSTSValue parses a Strict-Transport-Security header value (RFC 6797 §6.1).
func parseHSTSValue(v string) (hsts, error) {
	var h hsts
	seen := false
	for _, dir := range strings.Split(v, ";") {
		dir = strings.TrimSpace(dir)
		if dir == "" {
			continue
		}
		name, val, hasVal := strings.Cut(dir, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "max-age":
			n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if !hasVal || err != nil {
				return hsts{}, fmt.Errorf("max-age must be a number of seconds in %q", v)
			}
			h.maxAge, seen = n, true
		case "includesubdomains":
			h.sub = true
		case "preload":
			h.preload = true
		default:
			return hsts{}, fmt.Errorf("unknown Strict-Transport-Security directive %q in %q", name, v)
		}
	}
	if !seen {
		return hsts{}, fmt.Errorf("max-age is missing in %q", v)
	}
	return h, nil
}

// checkValue records an error for a header value that could split a header.
func checkValue(d *config.Diagnostics, path, v string) {
	if strings.ContainsAny(v, "\r\n\x00") {
		d.Errorf(path, "must not contain CR, LF or NUL")
	}
}

// Custom is the site's `headers` key: header name → value, set on every response. An empty
// value removes the header from responses (nginx and Caddy users reach for this to drop
// X-Powered-By).
type Custom map[string]string

// compileCustom validates the `headers` map and returns it as set and delete lists.
func compileCustom(c Custom, path string, d *config.Diagnostics) (set []field, del []string) {
	for _, name := range sortedKeys(c) {
		p := config.Join(path, name)
		if !core.IsToken(name) {
			d.Errorf(p, "%q is not a valid header name", name)
			continue
		}
		v := c[name]
		if strings.ContainsAny(v, "\r\n\x00") {
			checkValue(d, p, v)
			continue
		}
		key := http.CanonicalHeaderKey(name)
		if hopByHop(key) {
			d.Errorf(p, "%s is a hop-by-hop or framing header and cannot be set here", key)
			continue
		}
		if v == "" {
			del = append(del, key)
			continue
		}
		set = append(set, field{key, []string{v}})
	}
	return set, del
}

func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade", "Content-Length":
		return true
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normalizeHostPattern spells an allowedHosts entry as the core spells a request's host
// (canonical.Hostname: lower case, no trailing dot, IDNA A-labels), without a port and IPv6
// brackets. It reports false for something that is not a host.
func normalizeHostPattern(h string) (string, bool) {
	h = strings.TrimSpace(h)
	if h == "*" {
		return h, true
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Zone() == "" {
		return ip.String(), true
	}
	wild := strings.HasPrefix(h, "*.")
	if wild {
		h = h[2:]
	}
	host, _, err := canonical.Host(h, "")
	if err != nil || host == "" || strings.Contains(host, "*") {
		return "", false
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if wild {
		host = "*." + host
	}
	return host, true
}
