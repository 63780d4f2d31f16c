package extauthz

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/conduitproxy/conduit/modules/envoyext"
)

// okMutations is a parsed OkHttpResponse.
type okMutations struct {
	request  []envoyext.Mutation
	remove   []string
	response []envoyext.Mutation
	setQuery []*corev3.QueryParameter
	delQuery []string
}

// parseOK validates an OK answer's mutations before any is applied, so an answer is
// applied whole or not at all.
func parseOK(ok *authv3.OkHttpResponse) (*okMutations, error) {
	m := &okMutations{setQuery: ok.GetQueryParametersToSet(), delQuery: ok.GetQueryParametersToRemove()}
	var err error
	if m.request, err = envoyext.ParseMutations(ok.GetHeaders(), envoyext.Upstream); err != nil {
		return nil, err
	}
	if m.response, err = envoyext.ParseMutations(ok.GetResponseHeadersToAdd(), envoyext.Client); err != nil {
		return nil, err
	}
	if m.remove, err = envoyext.ParseNames(ok.GetHeadersToRemove(), envoyext.Upstream); err != nil {
		return nil, fmt.Errorf("headers_to_remove: %w", err)
	}
	for _, q := range m.setQuery {
		if q.GetKey() == "" {
			return nil, fmt.Errorf("query_parameters_to_set: empty key")
		}
	}
	return m, nil
}

// applyRequest changes r as the OK answer says: headers set, then removed, then the query.
func (m *okMutations) applyRequest(r *http.Request) {
	envoyext.Apply(r.Header, m.request)
	for _, name := range m.remove {
		delete(r.Header, name)
	}
	if len(m.setQuery) > 0 || len(m.delQuery) > 0 {
		r.URL.RawQuery = editQuery(r.URL.RawQuery, m.setQuery, m.delQuery)
		r.RequestURI = r.URL.RequestURI()
	}
	if r.Trailer != nil && (len(m.request) > 0 || len(m.remove) > 0) {
		names := make([]string, 0, len(m.request)+len(m.remove))
		for _, mu := range m.request {
			names = append(names, mu.Name)
		}
		envoyext.GuardTrailers(r, append(names, m.remove...))
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
