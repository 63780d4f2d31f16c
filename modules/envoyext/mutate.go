package envoyext

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
)

// Action is what a header Mutation does (Envoy's HeaderValueOption.append_action).
type Action int

const (
	AppendOrAdd       Action = iota // add another value (append: true, or APPEND_IF_EXISTS_OR_ADD)
	AddIfAbsent                     // only when the header is absent (ADD_IF_ABSENT)
	OverwriteOrAdd                  // replace every value (the default; OVERWRITE_IF_EXISTS_OR_ADD)
	OverwriteIfExists               // replace only an existing header (OVERWRITE_IF_EXISTS)
)

// Mutation is one header change, with its name in canonical form.
type Mutation struct {
	Name, Value string
	Act         Action
}

// Side says which header section a list of mutations is for.
type Side int

const (
	Upstream Side = iota // the request sent on
	Client               // a response to the client
)

// ParseMutations turns HeaderValueOptions into mutations. A name that is not a token or a
// value that cannot be sent is an error; names the gateway owns (see Ignored) are skipped.
func ParseMutations(opts []*corev3.HeaderValueOption, s Side) ([]Mutation, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	out := make([]Mutation, 0, len(opts))
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
		if Ignored(c, s) {
			continue
		}
		out = append(out, Mutation{Name: c, Value: value, Act: ActionOf(o)})
	}
	return out, nil
}

// ParseNames reads a list of header names to remove: pseudo-headers and the names the
// gateway owns (see Ignored) are skipped, a name that is not a token is an error; the rest
// are returned in canonical form.
func ParseNames(names []string, s Side) ([]string, error) {
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, ":") {
			continue
		}
		if !core.IsToken(name) {
			return nil, fmt.Errorf("%q is not a header name", name)
		}
		if c := textproto.CanonicalMIMEHeaderKey(name); !Ignored(c, s) {
			out = append(out, c)
		}
	}
	return out, nil
}

// ActionOf reads append (deprecated) and append_action. Without append, the enum's zero
// value APPEND_IF_EXISTS_OR_ADD cannot be told from "not set", and the ext_authz API says
// a header in these messages overwrites unless append is true; so it overwrites: a header
// the service sets is never a second value beside one the client sent.
func ActionOf(o *corev3.HeaderValueOption) Action {
	if a := o.GetAppend(); a != nil {
		if a.GetValue() {
			return AppendOrAdd
		}
		return OverwriteOrAdd
	}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return AddIfAbsent
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return OverwriteIfExists
	}
	return OverwriteOrAdd
}

// Ignored reports whether a canonical header name is one the service may not set or remove:
// Host, the connection and framing headers, and (towards the upstream) the forwarding
// headers the proxy writes itself (canonical.Protected).
func Ignored(name string, s Side) bool {
	switch name {
	case "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te",
		"Trailer", "Upgrade", "Content-Length", "Http2-Settings":
		return true
	}
	return s == Upstream && canonical.Protected(name)
}

// Apply applies mutations to h in order.
func Apply(h http.Header, muts []Mutation) {
	for _, m := range muts {
		_, exists := h[m.Name]
		switch m.Act {
		case AppendOrAdd:
			h[m.Name] = append(h[m.Name], m.Value)
		case AddIfAbsent:
			if !exists {
				h[m.Name] = []string{m.Value}
			}
		case OverwriteOrAdd:
			h[m.Name] = []string{m.Value}
		case OverwriteIfExists:
			if exists {
				h[m.Name] = []string{m.Value}
			}
		}
	}
}

// GuardTrailers keeps a client's request trailers from spelling again the headers a service
// set or removed (canonical names): such trailers are dropped now and when the body ends
// (the proxy forwards the trailers it finds then). It does nothing for a request without
// declared trailers.
func GuardTrailers(r *http.Request, names []string) {
	if r.Trailer == nil || len(names) == 0 {
		return
	}
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

// ResponseHeaders are mutations applied to the response just before its header is sent
// (register with core.OnHeader).
type ResponseHeaders []Mutation

// BeforeHeader implements core.HeaderHook.
func (h ResponseHeaders) BeforeHeader(_ *http.Request, hdr http.Header, _ int) { Apply(hdr, h) }

// The roles of this package's types, checked at compile time.
var _ core.HeaderHook = ResponseHeaders(nil)

// ReplyStatus is a status a service named (an HttpStatus code), or def when it named
// none or one that is not a final status.
func ReplyStatus(code int32, def int) int {
	c := int(code)
	if c < 200 || c > 599 {
		return def
	}
	return c
}

// WriteLocal sends a reply a service wrote: status, headers, body.
func WriteLocal(w http.ResponseWriter, r *http.Request, status int, muts []Mutation, body string) {
	h := w.Header()
	Apply(h, muts)
	if body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead && body != "" {
		_, _ = io.WriteString(w, body)
	}
}
