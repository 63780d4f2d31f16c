package proxy

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// setClientIdentity writes the two client-address headers the upstream receives besides
// X-Forwarded-For (see docs/proxy.md):
//
//   - X-Real-IP is always the gateway's view of the client: core.ClientIP, which is the TCP
//     peer, or the address ipFilter.trustProxy resolved from X-Forwarded-For behind a trusted
//     proxy (nginx's realip module with `proxy_set_header X-Real-IP $remote_addr`). A client's
//     copy never passes.
//   - Forwarded (RFC 7239) gets this hop's element `for=<peer>;proto=<http|https>;host=<Host>`,
//     appended to the prior value when the peer is a trusted proxy (core.PeerTrusted), and
//     replacing it otherwise, since an untrusted client can write anything there.
//
// The values come from vals, the request's slab of forwarding-header values.
func (rt *route) setClientIdentity(r *http.Request, h http.Header, proto string, vals *valueSlab) {
	peer, peerText := peerAddr(r)
	switch client := core.ClientIP(r); {
	case !client.IsValid():
		delete(h, "X-Real-Ip")
	case client == peer:
		h["X-Real-Ip"] = vals.one(peerText)
	default:
		h["X-Real-Ip"] = vals.one(client.String())
	}
	elem := forwardedElement(peer, peerText, proto, r.Host)
	if prior := h["Forwarded"]; len(prior) > 0 && core.PeerTrusted(r) {
		h["Forwarded"] = vals.one(strings.Join(prior, ", ") + ", " + elem)
		return
	}
	h["Forwarded"] = vals.one(elem)
}

// peerAddr is the TCP peer's address (IPv4-mapped addresses unmapped) and its text without
// a zone; invalid and "" for a peer that is not an IP endpoint. A plain IPv4 peer's text is
// the host part of RemoteAddr itself (netip accepts only the canonical dotted form there,
// which is what String would format), so the common case formats nothing.
func peerAddr(r *http.Request) (netip.Addr, string) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, ""
	}
	if a := ap.Addr(); a.Is4() {
		if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
			return a, r.RemoteAddr[:i]
		}
	}
	peer := ap.Addr().Unmap()
	return peer, peer.WithZone("").String()
}

// valueSlab hands out one-element header value slices cut from one backing array, so that
// the forwarding headers of a request cost one allocation rather than one each. Each slice
// has its length as capacity: appending to it copies, it never writes into a neighbour.
type valueSlab []string

// forwardingValues is how many values upstreamHeader takes from a slab: X-Forwarded-For,
// X-Forwarded-Host, X-Real-IP and Forwarded.
const forwardingValues = 4

// one returns a slice holding only v.
func (s *valueSlab) one(v string) []string {
	if len(*s) == cap(*s) {
		*s = make(valueSlab, 0, forwardingValues)
	}
	*s = append(*s, v)
	n := len(*s)
	return (*s)[n-1 : n : n]
}

// forwardedElement formats one RFC 7239 forwarded-element for the peer (peerText is its
// text without a zone). The node is "unknown" (§6.2) when the peer has no IP address; IPv6
// nodes are bracketed and quoted (§6); values that are not tokens are quoted strings.
func forwardedElement(peer netip.Addr, peerText, proto, host string) string {
	node := "unknown"
	if peer.IsValid() {
		node = peerText
		if peer.Is6() {
			node = "[" + node + "]"
		}
	}
	var b strings.Builder
	b.Grow(len("for=;proto=;host=") + len(node) + len(proto) + len(host) + 8)
	b.WriteString("for=")
	writeForwardedValue(&b, node)
	b.WriteString(";proto=")
	writeForwardedValue(&b, proto)
	if host != "" {
		b.WriteString(";host=")
		writeForwardedValue(&b, host)
	}
	return b.String()
}

// writeForwardedValue writes v as an RFC 7230 token when it is one, else as a
// quoted-string (backslash before `"` and `\`; control characters, which a quoted-string
// cannot hold, become spaces).
func writeForwardedValue(b *strings.Builder, v string) {
	if core.IsToken(v) {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t' || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
