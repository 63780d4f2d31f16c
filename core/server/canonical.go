package server

import (
	"net/http"

	"github.com/conduitproxy/conduit/core/canonical"
)

// canonicalize rewrites r, before a site is chosen, into the one view that dispatch, every
// module and the upstream share (docs/security.md): r.Host becomes the canonical authority,
// r.URL's path and r.RequestURI the canonical path, an absolute-form target becomes
// origin-form, and the Connection header loses every field it nominates. It returns the
// canonical host name without its port (for dispatch) and the names Connection nominated,
// or answers 400 itself and returns ok false.
func (g *Generation) canonicalize(w http.ResponseWriter, r *http.Request) (host string, nominated []string, ok bool) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// HTTP/3 keeps a client's Host field in the header map beside :authority (net/http's
	// HTTP/1 and HTTP/2 servers move it to r.Host): r.Host is the one authority.
	delete(r.Header, "Host")
	host, port, err := canonical.Host(r.Host, scheme)
	if err != nil {
		badRequest(w, r, "invalid Host header")
		return "", nil, false
	}
	if !isAuthority(r.Host, host, port) {
		r.Host = canonical.Authority(host, port)
	}
	if r.Method != http.MethodConnect && r.URL.Path != "*" {
		raw := r.URL.EscapedPath()
		escaped, decoded, err := canonical.Path(raw, g.Paths)
		if err != nil {
			badRequest(w, r, "invalid request path")
			return "", nil, false
		}
		absolute := r.URL.Scheme != "" || r.URL.Host != ""
		if escaped != raw || absolute {
			r.URL.Scheme, r.URL.Host, r.URL.Opaque = "", "", ""
			r.URL.Path = decoded
			r.URL.RawPath = ""
			if escaped != decoded {
				r.URL.RawPath = escaped
			}
			r.RequestURI = r.URL.RequestURI()
		}
	}
	name, nominated := canonical.Connection(r.Header)
	if name != "" {
		badRequest(w, r, "Connection header nominates a protected header")
		return "", nil, false
	}
	return host, nominated, true
}

// isAuthority reports whether h is already host[:port], without building that string.
func isAuthority(h, host, port string) bool {
	if port == "" {
		return h == host
	}
	return len(h) == len(host)+1+len(port) && h[:len(host)] == host && h[len(host)] == ':' && h[len(host)+1:] == port
}
