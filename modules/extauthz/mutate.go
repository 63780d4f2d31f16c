package extauthz

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
)

// action is what a header mutation does (Envoy's HeaderValueOption.append_action).
type action int

const (
	appendOrAdd      action = iota // add another value (append: true, or APPEND_IF_EXISTS_OR_ADD)
	addIfAbsent                    // only when the header is absent (ADD_IF_ABSENT)
	overwriteOrAdd                 // replace every value (the default; OVERWRITE_IF_EXISTS_OR_ADD)
	overwriteIfExist               // replace only an existing header (OVERWRITE_IF_EXISTS)
)

// mutation is one header change, with its name in canonical form.
type mutation struct {
	name, value string
	act         action
}

// side says which header section a list of mutations is for.
type side int

const (
	upstreamSide side = iota // the request sent on
	clientSide               // a response to the client
)

// okMutations is a parsed OkHttpResponse.
type okMutations struct {
	request  []mutation
	remove   []string
	response []mutation
	setQuery []*corev3.QueryParameter
	delQuery []string
}

// parseOK validates an OK answer's mutations before any is applied, so an answer is
// applied whole or not at all.
func parseOK(ok *authv3.OkHttpResponse) (*okMutations, error) {
	m := &okMutations{setQuery: ok.GetQueryParametersToSet(), delQuery: ok.GetQueryParametersToRemove()}
	var err error
	if m.request, err = parseMutations(ok.GetHeaders(), upstreamSide); err != nil {
		return nil, err
	}
	if m.response, err = parseMutations(ok.GetResponseHeadersToAdd(), clientSide); err != nil {
		return nil, err
	}
	for _, name := range ok.GetHeadersToRemove() {
		if strings.HasPrefix(name, ":") {
			continue // pseudo-headers cannot be removed (Envoy ignores them too)
		}
		if !core.IsToken(name) {
			return nil, fmt.Errorf("headers_to_remove: %q is not a header name", name)
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if !ignored(c, upstreamSide) {
			m.remove = append(m.remove, c)
		}
	}
	for _, q := range m.setQuery {
		if q.GetKey() == "" {
			return nil, fmt.Errorf("query_parameters_to_set: empty key")
		}
	}
	return m, nil
}

// parseMutations turns HeaderValueOptions into mutations. A name that is not a token or a
// value that cannot be sent is an error; names the gateway owns (see ignored) are skipped.
func parseMutations(opts []*corev3.HeaderValueOption, s side) ([]mutation, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	out := make([]mutation, 0, len(opts))
	for _, o := range opts {
		h := o.GetHeader()
		name := h.GetKey()
		if strings.HasPrefix(name, ":") {
			continue
		}
		if !core.IsToken(name) {
			return nil, fmt.Errorf("header %q is not a header name", name)
		}
		value := h.GetValue()
		if value == "" && len(h.GetRawValue()) > 0 {
			value = string(h.GetRawValue())
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, fmt.Errorf("header %s: the value cannot be sent", name)
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if ignored(c, s) {
			continue
		}
		out = append(out, mutation{name: c, value: value, act: actionOf(o)})
	}
	return out, nil
}

// actionOf reads append (deprecated) and append_action. Without append, the enum's zero
// value APPEND_IF_EXISTS_OR_ADD cannot be told from "not set", and the ext_authz API says
// a header in these messages overwrites unless append is true; so it overwrites: a header
// the service sets is never a second value beside one the client sent.
func actionOf(o *corev3.HeaderValueOption) action {
	if a := o.GetAppend(); a != nil {
		if a.GetValue() {
			return appendOrAdd
		}
		return overwriteOrAdd
	}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return addIfAbsent
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return overwriteIfExist
	}
	return overwriteOrAdd
}

// ignored reports whether a canonical header name is one the service may not set or remove:
// Host, the connection and framing headers, and (towards the upstream) the forwarding
// headers the proxy writes itself (canonical.Protected).
func ignored(name string, s side) bool {
	switch name {
	case "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te",
		"Trailer", "Upgrade", "Content-Length", "Http2-Settings":
		return true
	}
	return s == upstreamSide && canonical.Protected(name)
}

// apply applies mutations to h in order.
func apply(h http.Header, muts []mutation) {
	for _, m := range muts {
		_, exists := h[m.name]
		switch m.act {
		case appendOrAdd:
			h[m.name] = append(h[m.name], m.value)
		case addIfAbsent:
			if !exists {
				h[m.name] = []string{m.value}
			}
		case overwriteOrAdd:
			h[m.name] = []string{m.value}
		case overwriteIfExist:
			if exists {
				h[m.name] = []string{m.value}
			}
		}
	}
}

// applyRequest changes r as the OK answer says: headers set, then removed, then the query.
func (m *okMutations) applyRequest(r *http.Request) {
	apply(r.Header, m.request)
	for _, name := range m.remove {
		delete(r.Header, name)
	}
	if len(m.setQuery) > 0 || len(m.delQuery) > 0 {
		r.URL.RawQuery = editQuery(r.URL.RawQuery, m.setQuery, m.delQuery)
		r.RequestURI = r.URL.RequestURI()
	}
	if r.Trailer != nil && (len(m.request) > 0 || len(m.remove) > 0) {
		guardTrailers(r, m)
	}
}

// editQuery removes the parameters named in del and those set, keeping the order of the
// others, then appends each set parameter once. Names compare after decoding, so a client
// cannot keep a parameter the service removes by spelling it %61.
func editQuery(raw string, set []*corev3.QueryParameter, del []string) string {
	drop := func(k string) bool {
		if slices.Contains(del, k) {
			return true
		}
		for _, q := range set {
			if q.GetKey() == k {
				return true
			}
		}
		return false
	}
	var b strings.Builder
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		if drop(dk) || drop(k) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	for i, q := range set {
		if slices.ContainsFunc(set[:i], func(p *corev3.QueryParameter) bool { return p.GetKey() == q.GetKey() }) {
			continue
		}
		v := q.GetValue()
		for _, later := range set[i+1:] {
			if later.GetKey() == q.GetKey() {
				v = later.GetValue() // the last value set wins
			}
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(q.GetKey()))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	return b.String()
}

// guardTrailers keeps a client's request trailers from spelling again a header the service
// set or removed: such trailers are dropped now and when the body ends (the proxy forwards
// the trailers it finds then).
func guardTrailers(r *http.Request, m *okMutations) {
	names := make([]string, 0, len(m.request)+len(m.remove))
	for _, mu := range m.request {
		names = append(names, mu.name)
	}
	names = append(names, m.remove...)
	for _, n := range names {
		delete(r.Trailer, n)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, r: r, names: names}
	}
}

// trailerGuard removes the guarded names from r.Trailer when the body ends.
type trailerGuard struct {
	io.ReadCloser
	r     *http.Request
	names []string
}

// Read implements io.Reader.
func (t *trailerGuard) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		for _, name := range t.names {
			delete(t.r.Trailer, name)
		}
	}
	return n, err
}

// responseHeaders is an OK answer's response_headers_to_add, applied to the response just
// before its header is sent.
type responseHeaders struct{ muts []mutation }

// BeforeHeader implements core.HeaderHook.
func (h *responseHeaders) BeforeHeader(_ *http.Request, hdr http.Header, _ int) { apply(hdr, h.muts) }

// replyStatus is a status the service named (an HttpStatus code), or def when it named
// none or one that is not a final status.
func replyStatus(code int32, def int) int {
	c := int(code)
	if c < 200 || c > 599 {
		return def
	}
	return c
}

// writeLocal sends a reply the service wrote: status, headers, body.
func writeLocal(w http.ResponseWriter, r *http.Request, status int, muts []mutation, body string) {
	h := w.Header()
	apply(h, muts)
	if body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead && body != "" {
		_, _ = io.WriteString(w, body)
	}
}
