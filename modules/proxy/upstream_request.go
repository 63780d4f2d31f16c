package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/router"
)

// This file builds the upstream request's URL (stripPrefix, rewrite, the target's base path)
// and header (hop-by-hop fields removed, forwarding headers added, requestTransform).

// upstreamURL builds the outbound URL into u: the target's scheme and host, the target's
// base path joined with the (stripped, rewritten) request path, and the query.
func (rt *route) upstreamURL(u *url.URL, up *upstream, r *http.Request) {
	path, rawPath := r.URL.Path, r.URL.RawPath
	query := r.URL.RawQuery
	if rt.stripPrefix != "" {
		path = router.StripPrefix(path, rt.stripPrefix)
		if rawPath != "" {
			if router.HasPathPrefix(rawPath, rt.stripPrefix) {
				rawPath = router.StripPrefix(rawPath, rt.stripPrefix)
			} else {
				rawPath = ""
			}
		}
	}
	for _, rw := range rt.rewrite {
		if rw.re != nil && rw.re.MatchString(path) {
			path = rw.re.ReplaceAllString(path, rw.To)
			rawPath = ""
			if p, q, ok := strings.Cut(path, "?"); ok {
				path = p
				if query != "" {
					query = q + "&" + query
				} else {
					query = q
				}
			}
			break
		}
	}
	*u = url.URL{Scheme: up.url.Scheme, Host: up.url.Host, RawQuery: query}
	if bp := up.url.Path; bp != "" && bp != "/" {
		u.Path = joinPath(bp, path)
		if rawPath != "" {
			u.RawPath = joinPath(up.url.EscapedPath(), rawPath)
		}
	} else {
		u.Path, u.RawPath = path, rawPath
	}
}

// joinPath joins two URL paths with exactly one slash between them.
func joinPath(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// upstreamHeader turns the client's header map into the upstream request's, in place (the
// proxy is the end of the pipeline, so nothing later needs the client's copy; the mirror
// copies it first): hop-by-hop fields go, the forwarding headers (X-Forwarded-*, X-Real-IP,
// Forwarded, Via) and the verified client certificate's identity are added, then
// requestTransform runs.
func (rt *route) upstreamHeader(r *http.Request, st *core.RequestState, upgrade bool, upType string) http.Header {
	h := r.Header
	dropHopHeaders(h)
	if upgrade {
		h["Connection"] = connUpgrade
		h["Upgrade"] = []string{upType}
	}
	rt.addForwardedHeaders(r, h)
	setClientCertHeaders(r, h)
	appendVia(r, h)
	if tr := rt.site.requestTransform; tr != nil {
		var claims map[string]any
		if st != nil {
			claims = st.Claims
		}
		tr.apply(h, claims)
	}
	return h
}

// dropHopHeaders removes the hop-by-hop fields, those the Connection header names, and
// Expect. "TE: trailers" survives: gRPC and others rely on it, and it is the one TE value
// forwarded. The fields Connection names are deleted by their canonical names first (as
// before); the fixed list and Expect go in one pass over the map, which holds a handful of
// fields where the list has eleven names to hash.
func dropHopHeaders(h http.Header) {
	keepTrailers := false
	for _, v := range h["Te"] {
		if strings.EqualFold(textproto.TrimString(v), "trailers") {
			keepTrailers = true
		}
	}
	if _, ok := h["Connection"]; ok {
		eachConnectionToken(h, func(name string) bool {
			delete(h, name)
			return true
		})
	}
	for k := range h {
		if isHopHeader(k) || k == "Expect" {
			delete(h, k)
		}
	}
	if keepTrailers {
		h["Te"] = teTrailers
	}
}

// addForwardedHeaders appends the TCP peer to X-Forwarded-For, sets X-Forwarded-Proto
// (https for a TLS site or connection) and X-Forwarded-Host, then the client identity
// headers (setClientIdentity: X-Real-IP, Forwarded).
func (rt *route) addForwardedHeaders(r *http.Request, h http.Header) {
	vals := make(valueSlab, 0, forwardingValues)
	if ip := clientIP(r); ip != "" {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = vals.one(strings.Join(prior, ", ") + ", " + ip)
		} else {
			h["X-Forwarded-For"] = vals.one(ip)
		}
	}
	if rt.site.site != nil && rt.site.site.TLS || r.TLS != nil {
		h["X-Forwarded-Proto"] = protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
	h["X-Forwarded-Host"] = vals.one(r.Host)
	rt.setClientIdentity(r, h, h["X-Forwarded-Proto"][0], &vals)
}

// setClientCertHeaders replaces any client-sent X-Client-Cert-Subject and
// X-Client-Cert-Fingerprint with the verified mTLS client certificate's subject and SHA-256
// fingerprint, or removes them when no certificate was verified.
func setClientCertHeaders(r *http.Request, h http.Header) {
	delete(h, "X-Client-Cert-Subject")
	delete(h, "X-Client-Cert-Fingerprint")
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		h["X-Client-Cert-Subject"] = []string{sanitizeHeaderValue(leaf.Subject.String())}
		h["X-Client-Cert-Fingerprint"] = []string{hex.EncodeToString(sum[:])}
	}
}

// appendVia adds this hop ("1.1 conduit", "2.0 conduit" or "1.0 conduit") to Via.
func appendVia(r *http.Request, h http.Header) {
	via := viaFor(r)
	if prior := h["Via"]; len(prior) > 0 {
		h["Via"] = []string{strings.Join(prior, ", ") + ", " + via}
	} else {
		h["Via"] = viaValues(via)
	}
}

// viaValues returns a shared one-element slice for the common Via values.
func viaValues(v string) []string {
	switch v {
	case via11:
		return via11Values
	case via20:
		return via20Values
	case via30:
		return via30Values
	}
	return []string{v}
}

// Shared header values. The transport never modifies a request's header slices, so one
// slice can serve every request.
var (
	protoHTTPS  = []string{"https"}
	protoHTTP   = []string{"http"}
	emptyValue  = []string{""}
	teTrailers  = []string{"trailers"}
	connUpgrade = []string{"Upgrade"}
	via11       = "1.1 conduit"
	via20       = "2.0 conduit"
	via30       = "3.0 conduit"
	via11Values = []string{via11}
	via20Values = []string{via20}
	via30Values = []string{via30}
)

// viaFor is this hop's Via entry for the client's protocol version.
func viaFor(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return via20
	}
	if r.ProtoMajor == 3 {
		return via30
	}
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return "1.0 conduit"
	}
	return via11
}

// viaHops counts the Conduit entries in Via.
func viaHops(h http.Header) int {
	n := 0
	for _, v := range h["Via"] {
		n += strings.Count(v, " conduit")
	}
	return n
}

// clientIP is the TCP peer address without port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}
