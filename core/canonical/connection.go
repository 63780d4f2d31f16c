package canonical

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Connection applies a client's Connection header at the entry of the pipeline, before any
// module adds a header: every field it nominates is removed, and Connection keeps only the
// tokens of the hop-by-hop fields the server and proxy handle themselves ("close",
// "keep-alive", "upgrade", "te", "trailer", ...). A header a module injects later can then
// never be removed by a client's token.
//
// It reports the first nominated name that the gateway itself sets upstream (Host,
// X-Forwarded-*, Forwarded, X-Real-Ip, X-Request-Id, Via): such a request is refused (400)
// rather than stripped. Otherwise it returns the canonical names it removed, so that
// trailers of those names can be dropped too. It does not allocate when Connection holds
// only hop-by-hop tokens.
func Connection(h http.Header) (protected string, nominated []string) {
	vals := h["Connection"]
	if len(vals) == 0 {
		return "", nil
	}
	clean := true
	for _, v := range vals {
		eachToken(v, func(tok string) {
			if !hopToken(tok) {
				clean = false
			}
		})
	}
	if clean {
		return "", nil
	}
	var kept []string
	for _, v := range vals {
		eachToken(v, func(tok string) {
			if protected != "" {
				return
			}
			if hopToken(tok) {
				kept = append(kept, strings.ToLower(tok))
				return
			}
			name := http.CanonicalHeaderKey(tok)
			if Protected(name) {
				protected = name
				return
			}
			delete(h, name)
			nominated = append(nominated, name)
		})
	}
	if protected != "" {
		return protected, nil
	}
	if len(kept) == 0 {
		delete(h, "Connection")
	} else {
		h["Connection"] = []string{strings.Join(kept, ", ")}
	}
	return "", nominated
}

func eachToken(v string, fn func(tok string)) {
	for len(v) > 0 {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if tok = textproto.TrimString(tok); tok != "" {
			fn(tok)
		}
	}
}

// hopToken reports whether tok names a hop-by-hop field (RFC 9110 §7.6.1 and the fields
// proxies treat as such) or the "close" option.
func hopToken(tok string) bool {
	for _, h := range hopTokens {
		if strings.EqualFold(tok, h) {
			return true
		}
	}
	return false
}

var hopTokens = []string{"close", "keep-alive", "upgrade", "te", "trailer", "transfer-encoding",
	"proxy-connection", "proxy-authenticate", "proxy-authorization", "http2-settings"}

// Protected reports whether a canonical header name is one the gateway sets towards the
// upstream itself (Host, the forwarding headers, the request ID, Via): a client may not
// nominate it in Connection, nor send it as a trailer.
func Protected(name string) bool {
	switch name {
	case "Host", "Forwarded", "X-Real-Ip", "X-Request-Id", "Via":
		return true
	}
	return strings.HasPrefix(name, "X-Forwarded-")
}
