// Package authutil holds small pieces the auth modules share: the denial counter, header
// helpers and the Authorization header parsers.
package authutil

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// DeniedMetric is the name of the counter of requests an auth module denied.
const DeniedMetric = "conduit_auth_denied_total"

// Denied returns the denial counter of module on the context's site, created at provision
// time so the request path only increments it.
func Denied(ctx *core.SiteContext, module string) *telemetry.Metric {
	if ctx.Global == nil || ctx.Global.Metrics == nil {
		return nil
	}
	return ctx.Global.Metrics.Counter(DeniedMetric, "Requests denied by an authentication module.", "site", "module").
		With(ctx.Site.Label, module)
}

// Deny answers a denial (core.Deny's body rules) and counts it.
func Deny(w http.ResponseWriter, r *http.Request, status int, m *telemetry.Metric) {
	if m != nil {
		m.Inc()
	}
	core.Deny(w, r, status)
}

// MaxCredentialBytes bounds an Authorization value the guards will look at.
const MaxCredentialBytes = 8 << 10

// BasicCredentials parses "Authorization: Basic base64(user:pass)". The scheme is
// case-insensitive. It allocates the decoded bytes only when the header is present.
func BasicCredentials(r *http.Request) (user, pass string, ok bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 6 || len(v) > MaxCredentialBytes || !strings.EqualFold(v[:6], "basic ") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[6:]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

// BearerToken returns the token of "Authorization: Bearer <token>" (scheme
// case-insensitive), and whether the header had that form.
func BearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

// QueryParam returns the first value of the query parameter name in raw (an unparsed query
// string), unescaped, without building a map. Parameters that fail to unescape are skipped.
func QueryParam(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name {
			if strings.ContainsAny(k, "%+") {
				if uk, err := unescape(k); err == nil && uk == name {
					if uv, err := unescape(v); err == nil {
						return uv, true
					}
				}
			}
			continue
		}
		if !strings.ContainsAny(v, "%+") {
			return v, true
		}
		if uv, err := unescape(v); err == nil {
			return uv, true
		}
	}
	return "", false
}
