package proxy

import (
	"encoding/json"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
	"golang.org/x/net/http/httpguts"
)

// hopHeaders are removed in both directions (RFC 9110 §7.6.1 and Pingora's list); headers
// named in Connection are removed too.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings",
}

func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings":
		return true
	}
	return false
}

// connectionTokens returns the header names listed in Connection, canonicalised.
// It calls fn for each and reports false if fn does.
func eachConnectionToken(h http.Header, fn func(name string) bool) bool {
	for _, v := range h["Connection"] {
		for len(v) > 0 {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = textproto.TrimString(tok)
			if tok == "" {
				continue
			}
			switch {
			case strings.EqualFold(tok, "keep-alive"): // the common tokens, without an allocation
				tok = "Keep-Alive"
			case strings.EqualFold(tok, "close"):
				tok = "Close"
			default:
				tok = http.CanonicalHeaderKey(tok)
			}
			if !fn(tok) {
				return false
			}
		}
	}
	return true
}

// isUpgrade reports whether the request asks for a WebSocket upgrade: Connection lists
// "upgrade" and Upgrade lists the protocol "websocket" (case-insensitive, RFC 6455 §4.1).
// It returns that token as the client spelled it; the other offered protocols are not
// forwarded. Any other upgrade (h2c, TLS/1.0, …) is not one: upstreamHeader then drops
// Upgrade and Connection as hop-by-hop and the request is proxied as a plain request, as a
// server may ignore Upgrade (RFC 9110 §7.8) and as Envoy does with h2c.
func isUpgrade(h http.Header) (string, bool) {
	ws := websocketToken(h["Upgrade"])
	if ws == "" {
		return "", false
	}
	ok := false
	eachConnectionToken(h, func(name string) bool {
		if name == "Upgrade" {
			ok = true
			return false
		}
		return true
	})
	return ws, ok
}

// websocketToken returns the "websocket" protocol from Upgrade field lines, "" when none
// offers it. A protocol with a version ("websocket/13") is not the WebSocket upgrade.
func websocketToken(lines []string) string {
	for _, v := range lines {
		for len(v) > 0 {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = textproto.TrimString(tok); strings.EqualFold(tok, "websocket") {
				return tok
			}
		}
	}
	return ""
}

// compiledTransform is a requestTransform/responseTransform ready for the hot path.
type compiledTransform struct {
	remove []string // canonical names
	set    []setHeader
}

type setHeader struct {
	name  string // canonical
	parts []templatePart
	// static is the value when it has no template.
	static string
}

// templatePart is literal text or a {{ jwt.<claim> }} reference.
type templatePart struct {
	text  string
	claim string
}

// compileTransform checks a transform at its config path and compiles it. A header name that
// is not an RFC 9110 token, or a value with a control character (CR, LF, NUL, …: anything
// but HTAB below 0x20, and DEL), is an error: no upstream client would send it, so every
// request would fail with 502. Errors name the header but never print its value.
func compileTransform(t *Transform, path string, request bool, d *config.Diagnostics) *compiledTransform {
	ct := &compiledTransform{}
	for i, name := range t.RemoveHeaders {
		if !httpguts.ValidHeaderFieldName(name) {
			d.Errorf(config.Index(config.Join(path, "removeHeaders"), i), "%q is not a valid header name (RFC 9110 token characters only)", name)
			continue
		}
		ct.remove = append(ct.remove, http.CanonicalHeaderKey(name))
	}
	setPath := config.Join(path, "setHeaders")
	for _, name := range config.SortedKeys(toNodes(t.SetHeaders)) {
		val := t.SetHeaders[name]
		if !httpguts.ValidHeaderFieldName(name) {
			d.Errorf(setPath+"["+strconv.Quote(name)+"]", "%q is not a valid header name (RFC 9110 token characters only)", name)
			continue
		}
		if i := controlByte(val); i >= 0 {
			d.Errorf(config.Join(setPath, name), "value contains a control character (byte %d); CR, LF, NUL and other control characters cannot be sent in a header", i)
			continue
		}
		sh := setHeader{name: http.CanonicalHeaderKey(name)}
		parts, hasTemplate, err := parseTemplate(val)
		switch {
		case err != nil:
			d.Errorf(config.Join(setPath, name), "%v", err)
			continue
		case hasTemplate && !request:
			d.Warnf(config.Join(setPath, name), "{{ jwt.* }} templates only work in requestTransform; the text is sent literally")
			sh.static = val
		case hasTemplate:
			sh.parts = parts
		default:
			sh.static = val
		}
		ct.set = append(ct.set, sh)
	}
	return ct
}

// controlByte returns the index of the first byte of v that a header value cannot hold (a
// control character other than HTAB, or DEL), -1 when there is none.
func controlByte(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return i
		}
	}
	return -1
}

func toNodes(m map[string]string) map[string]config.Node {
	out := make(map[string]config.Node, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parseTemplate splits "Bearer {{ jwt.sub }}" into parts.
func parseTemplate(s string) ([]templatePart, bool, error) {
	var parts []templatePart
	has := false
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			break
		}
		expr := strings.TrimSpace(s[i+2 : i+j])
		claim, ok := strings.CutPrefix(expr, "jwt.")
		if !ok || claim == "" {
			return nil, false, errBadTemplate(expr)
		}
		if i > 0 {
			parts = append(parts, templatePart{text: s[:i]})
		}
		parts = append(parts, templatePart{claim: claim})
		has = true
		s = s[i+j+2:]
	}
	if s != "" {
		parts = append(parts, templatePart{text: s})
	}
	return parts, has, nil
}

type errBadTemplate string

func (e errBadTemplate) Error() string {
	return "unsupported template {{ " + string(e) + " }} (only {{ jwt.<claim> }})"
}

// touches reports whether the transform sets or removes the header name (canonical); a nil
// transform touches nothing.
func (ct *compiledTransform) touches(name string) bool {
	if ct == nil {
		return false
	}
	for _, n := range ct.remove {
		if n == name {
			return true
		}
	}
	for i := range ct.set {
		if ct.set[i].name == name {
			return true
		}
	}
	return false
}

// apply runs the transform on h; claims feed templates (nil without a verified token).
func (ct *compiledTransform) apply(h http.Header, claims map[string]any) {
	for _, name := range ct.remove {
		delete(h, name)
	}
	for i := range ct.set {
		sh := &ct.set[i]
		if sh.parts == nil {
			h[sh.name] = []string{sh.static}
			continue
		}
		var b strings.Builder
		for _, p := range sh.parts {
			if p.claim == "" {
				b.WriteString(p.text)
				continue
			}
			b.WriteString(claimText(claims, p.claim))
		}
		h[sh.name] = []string{sanitizeHeaderValue(b.String())}
	}
}

// claimText renders a claim: strings as they are, other values as JSON, unknown as "".
func claimText(claims map[string]any, name string) string {
	v, ok := claims[name]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// sanitizeHeaderValue removes CR, LF and NUL so a claim cannot inject headers.
func sanitizeHeaderValue(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// maskedBody replaces an upstream's 5xx body when maskErrors is on (docs/configuration.md,
// "maskErrors body"); the upstream's status code is kept.
const maskedBody = `{"error":"Internal Server Error","status":500}`
