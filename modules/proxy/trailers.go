package proxy

import (
	"io"
	"net/http"
	"slices"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
)

// requestTrailers decides which of a client's request trailers reach the upstream. A trailer
// arrives after the guards ran, so a name the gateway sets or trusts in the header section
// must not be spelled again there: hop-by-hop names (and names the client's Connection header
// nominated), the forwarding headers the proxy writes, the mTLS identity headers, the names
// the site's guards inject (core.RequestHeaderInjector) and the names requestTransform sets
// or removes are dropped; every other trailer is forwarded.
type requestTrailers struct {
	rt        *route
	r         *http.Request
	nominated []string // canonical names the client's Connection header listed
}

// newRequestTrailers returns nil when the client declared no trailers (the common case:
// nothing to forward, nothing allocated). It must run before upstreamHeader removes the
// client's Connection header.
func (rt *route) newRequestTrailers(r *http.Request) *requestTrailers {
	if r.Trailer == nil {
		return nil
	}
	t := &requestTrailers{rt: rt, r: r}
	// The entry removed the fields the client's Connection header nominated and kept only
	// hop-by-hop tokens in it (docs/security.md); the names are on the request state.
	if st := core.State(r); st != nil {
		t.nominated = st.Nominated
	}
	eachConnectionToken(r.Header, func(name string) bool {
		t.nominated = append(t.nominated, name)
		return true
	})
	return t
}

// header returns one attempt's outgoing trailer map with the values known now (all of them
// when the body was buffered); body fills in the rest when the client's body ends.
func (t *requestTrailers) header() http.Header {
	if t == nil {
		return nil
	}
	out := make(http.Header, len(t.r.Trailer))
	t.copyAllowed(out)
	return out
}

// body wraps the client's body so that out receives the allowed trailers as soon as the body
// reports EOF, before the transport writes the trailer section from out.
func (t *requestTrailers) body(rc io.ReadCloser, out http.Header) io.ReadCloser {
	if t == nil {
		return rc
	}
	return &trailerBody{ReadCloser: rc, t: t, out: out}
}

func (t *requestTrailers) copyAllowed(out http.Header) {
	for k, vv := range t.r.Trailer {
		if t.allowed(k) {
			out[k] = vv
		}
	}
}

// allowed reports whether the trailer name (canonical) may reach the upstream.
func (t *requestTrailers) allowed(name string) bool {
	switch {
	case isHopHeader(name), isGatewayHeader(name), slices.Contains(t.nominated, name):
		return false
	case t.rt.hooks.InjectsRequestHeader(name):
		return false
	case t.rt.site.requestTransform.touches(name):
		return false
	}
	return true
}

// isGatewayHeader reports whether name (canonical) is a request header the proxy itself
// writes or rewrites for the upstream (canonical.Protected: the forwarding headers, Host, the
// request ID, Via), the mTLS identity, or the consumers guard's default identity header,
// which upstreams behind a gateway commonly trust even on sites that do not configure
// consumers.
func isGatewayHeader(name string) bool {
	switch name {
	case "X-Consumer-Id", "X-Client-Cert-Subject", "X-Client-Cert-Fingerprint":
		return true
	}
	return canonical.Protected(name)
}

// trailerBody copies the allowed trailers into out when the client's body ends.
type trailerBody struct {
	io.ReadCloser
	t   *requestTrailers
	out http.Header
}

// Read implements io.Reader; at the end of the body it copies the allowed trailers.
func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.t.copyAllowed(b.out)
	}
	return n, err
}

// responseTrailerAllowed reports whether an upstream response trailer named name (canonical)
// may reach the client: not a hop-by-hop name, and not one the response's Connection header
// nominates.
func responseTrailerAllowed(respHeader http.Header, name string) bool {
	if isHopHeader(name) {
		return false
	}
	return eachConnectionToken(respHeader, func(tok string) bool { return tok != name })
}
