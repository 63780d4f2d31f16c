package extauthz

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/conduitproxy/conduit/core"
)

// checkSettings are the fixed parts of every CheckRequest of one guard.
type checkSettings struct {
	ext  map[string]string
	meta *corev3.Metadata
}

// partialBodyHeader tells the service whether the body it got is cut short, as Envoy
// names it.
const partialBodyHeader = "x-envoy-auth-partial-body"

// checkRequest describes r as Envoy's HTTP ext_authz filter does, from the canonical
// request (the core rewrote host and path before any module ran; docs/security.md).
func (g *Guard) checkRequest(r *http.Request, body []byte, partial bool) *authv3.CheckRequest {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.URL.RequestURI()
	hdr := make(map[string]string, len(r.Header)+5)
	for k, vv := range r.Header {
		hdr[strings.ToLower(k)] = validUTF8(strings.Join(vv, ","))
	}
	hdr[":authority"] = validUTF8(r.Host)
	hdr[":method"] = r.Method
	hdr[":path"] = validUTF8(path)
	hdr[":scheme"] = scheme
	hreq := &authv3.AttributeContext_HttpRequest{
		Method:   r.Method,
		Headers:  hdr,
		Path:     validUTF8(path),
		Host:     validUTF8(r.Host),
		Scheme:   scheme,
		Size:     r.ContentLength,
		Protocol: protocol(r),
	}
	if g.body != nil {
		if partial {
			hdr[partialBodyHeader] = "true"
		} else {
			hdr[partialBodyHeader] = "false"
		}
		if g.body.packAsBytes {
			hreq.RawBody = body
		} else {
			hreq.Body = validUTF8(string(body))
		}
	}
	var start time.Time
	if st := core.State(r); st != nil {
		hreq.Id = st.ID
		start = st.Start
	}
	if start.IsZero() {
		start = time.Now()
	}
	attrs := &authv3.AttributeContext{
		Source:            g.source(r),
		Destination:       destination(r),
		Request:           &authv3.AttributeContext_Request{Time: timestamppb.New(start), Http: hreq},
		ContextExtensions: g.settings.ext,
		MetadataContext:   g.settings.meta,
	}
	if r.TLS != nil && r.TLS.ServerName != "" {
		attrs.TlsSession = &authv3.AttributeContext_TLSSession{Sni: r.TLS.ServerName}
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// source is the client: its address (the real client when the IP filter trusts the proxy
// in front), and with a verified mTLS certificate its principal and, with
// includePeerCertificate, the certificate.
func (g *Guard) source(r *http.Request) *authv3.AttributeContext_Peer {
	p := &authv3.AttributeContext_Peer{}
	ip := core.ClientIP(r)
	var port uint16
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().Unmap() == ip {
		port = ap.Port()
	}
	if ip.IsValid() {
		p.Address = socketAddress(ip.String(), port)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		p.Principal = validUTF8(principal(leaf))
		if g.peerCert {
			p.Certificate = urlEncodedPEM(leaf)
		}
	}
	return p
}

// destination is the local address the request arrived on.
func destination(r *http.Request) *authv3.AttributeContext_Peer {
	p := &authv3.AttributeContext_Peer{}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			p.Address = socketAddress(ap.Addr().Unmap().String(), ap.Port())
		}
	}
	return p
}

func socketAddress(ip string, port uint16) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// principal names a certificate as Envoy does: its first URI SAN, else its first DNS SAN,
// else its subject.
func principal(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// urlEncodedPEM is the certificate in PEM form, percent-encoded.
func urlEncodedPEM(c *x509.Certificate) string {
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	return strings.ReplaceAll(url.QueryEscape(string(b)), "+", "%20")
}

// protocol names the HTTP version as Envoy does.
func protocol(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "HTTP/2"
	case 3:
		return "HTTP/3"
	}
	if r.ProtoMinor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// validUTF8 replaces every byte that is not part of valid UTF-8 with "!", as Envoy does for
// header values; a protobuf string must be valid UTF-8, or the call cannot be sent (which a
// client could otherwise use to make every check fail).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c, n := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && n == 1 {
			b.WriteByte('!')
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
