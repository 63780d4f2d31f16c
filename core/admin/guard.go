package admin

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// origin is what the Admin API accepts as its own address: the port it listens on and the
// host names that reach it. Browsers cannot be trusted to keep a page on one site away from
// an API on loopback, so every request is checked against it (with or without a token):
//
//   - Host must name this API (DNS rebinding gives a hostile name this API's address);
//   - an Origin header must be this API's own origin (a page elsewhere is cross-origin);
//   - requests that change something may not come from another site (Sec-Fetch-Site) and,
//     when they carry a body, must say application/json, which an HTML form or a "simple"
//     cross-origin fetch cannot send without a preflight this API never answers.
type origin struct {
	// port is the port the listener is bound to (the configured one, or the ephemeral port
	// for a ":0" bind).
	port int
	// bindHost is the configured bind host in canonical form ("" for none).
	bindHost string
	// anyIP is true for a wildcard bind (0.0.0.0, [::] or an empty host): any IP literal
	// names this API then, as a browser cannot put a rebinding name in an IP literal.
	anyIP bool
}

// newOrigin derives the accepted addresses from the configured bind and the bound listener.
func newOrigin(bind string, bound net.Addr) origin {
	o := origin{}
	if ta, ok := bound.(*net.TCPAddr); ok {
		o.port = ta.Port
	}
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return o
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		o.anyIP = ip.IsUnspecified()
		o.bindHost = ip.Unmap().String()
		return o
	}
	o.anyIP = host == ""
	o.bindHost = strings.ToLower(host)
	return o
}

// refusal is why a request was turned away before authentication.
type refusal struct {
	status  int
	message string
}

// write answers the refusal.
func (ref *refusal) write(w http.ResponseWriter) {
	core.AdminError(w, ref.status, ref.message)
}

// check returns nil when r may go on to authentication, or why not.
func (o origin) check(r *http.Request) *refusal {
	if !o.names(r.Host) {
		return &refusal{http.StatusForbidden, fmt.Sprintf("Host must name this Admin API (%s)", o.example())}
	}
	for _, v := range r.Header.Values("Origin") {
		if !o.isOwnOrigin(v) {
			return &refusal{http.StatusForbidden, "cross-origin requests are refused (the Origin is not this Admin API)"}
		}
	}
	if !changesState(r.Method) {
		return nil
	}
	switch strings.ToLower(r.Header.Get("Sec-Fetch-Site")) {
	case "", "same-origin", "none":
	default:
		return &refusal{http.StatusForbidden, "cross-site requests are refused (Sec-Fetch-Site)"}
	}
	return nil
}

// checkBody returns a refusal when a state-changing request carries a body (or a
// Content-Type) that is not application/json.
func checkBody(r *http.Request) *refusal {
	if !changesState(r.Method) {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return &refusal{http.StatusUnsupportedMediaType, "a request body must be Content-Type: application/json"}
}

// changesState reports whether a method may change the server's state: everything but GET
// and HEAD.
func changesState(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

// names reports whether hostport (a Host header or an Origin's host) is this API: the
// listener's port (80 when absent) with a loopback IP, "localhost", the bind host or, for a
// wildcard bind, any IP literal.
func (o origin) names(hostport string) bool {
	host, port, ok := splitHostPort(hostport)
	if !ok || port != o.port {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || o.anyIP || ip.String() == o.bindHost
	}
	host = strings.ToLower(host)
	return host == "localhost" || host == o.bindHost
}

// isOwnOrigin reports whether an Origin header value is http://<a name of this API>.
func (o origin) isOwnOrigin(v string) bool {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return o.names(u.Host)
}

// example names the usual spelling of this API's address for error messages.
func (o origin) example() string {
	return "127.0.0.1:" + strconv.Itoa(o.port) + ", localhost:" + strconv.Itoa(o.port) + " or the bind address"
}

// splitHostPort splits a Host value into the host (an IPv6 literal without brackets) and
// the port, 80 when there is none. ok is false for anything malformed.
func splitHostPort(hostport string) (host string, port int, ok bool) {
	port = 80
	rest := ""
	switch {
	case strings.HasPrefix(hostport, "["):
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, false
		}
		host, rest = hostport[1:end], hostport[end+1:]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", 0, false
		}
	case strings.Count(hostport, ":") > 1:
		return "", 0, false
	default:
		host = hostport
		if i := strings.IndexByte(hostport, ':'); i >= 0 {
			host, rest = hostport[:i], hostport[i:]
		}
	}
	if rest != "" {
		digits, found := strings.CutPrefix(rest, ":")
		if !found || digits == "" || len(digits) > 5 || strings.TrimLeft(digits, "0123456789") != "" {
			return "", 0, false
		}
		port, _ = strconv.Atoi(digits)
	}
	return host, port, host != ""
}
