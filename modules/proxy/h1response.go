package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// This file reads the common upstream response head without net/http: an HTTP/1.1 response
// with a 2xx–5xx status (not 204 or 304), one Content-Length and no Transfer-Encoding,
// Trailer or `Connection: close`, to a request that is not HEAD, whose whole head is already
// in the connection's read buffer. Such a response costs two allocations (the head as one
// string, and an h1Response holding the Response, its body reader and the values of up to
// h1InlineFields fields) where http.ReadResponse and the body wrapper take nine: its header
// map is the connection's, cleared for each response (h1Conn.hdr), since the connection
// and its map belong to the response until its body ends. A response without a body ends
// its exchange at once (the connection may serve another while the caller still copies the
// header), so it keeps the map, and the connection makes a new one next time. Anything else, and
// any byte the fast path does not expect (a bare LF, a control character, a non-token byte
// in a name, a folded line), leaves the buffer untouched for http.ReadResponse, which then
// accepts or rejects the response exactly as before.

// h1FastFields is the most header fields a response on the fast path may have; the values
// of up to h1InlineFields of them live in the h1Response itself.
const (
	h1FastFields   = 64
	h1InlineFields = 8
)

// h1Response is a fast-path response, its body reader and (for up to h1InlineFields
// fields) its field values in one allocation.
type h1Response struct {
	resp http.Response
	body h1Body
	vals [h1InlineFields]string
}

var crlfcrlf = []byte("\r\n\r\n")

// readResponse reads one response head from pc: on the fast path when it can, else with
// http.ReadResponse. fast is the fast path's response (nil otherwise); its body is set by
// the caller.
func (pc *h1Conn) readResponse(req *http.Request) (resp *http.Response, fast *h1Response, err error) {
	if req.Method != http.MethodHead {
		buf, _ := pc.br.Peek(pc.br.Buffered())
		if end := bytes.Index(buf, crlfcrlf); end >= 0 {
			fr := &h1Response{}
			if parseH1Head(string(buf[:end]), fr, &pc.hdr) {
				_, _ = pc.br.Discard(end + len(crlfcrlf))
				fr.resp.Request = req
				return &fr.resp, fr, nil
			}
		}
	}
	resp, err = http.ReadResponse(pc.br, req)
	return resp, nil, err
}

// parseH1Head parses a response head (the status line and the field lines, CRLF-separated,
// without the empty line) into fr, as http.ReadResponse would for the responses the fast
// path takes. It reports false for any other response, leaving the choice to
// http.ReadResponse. The header goes into *reuse, cleared first (a new map when nil); a
// response without a body takes that map for good: *reuse becomes nil.
func parseH1Head(s string, fr *h1Response, reuse *http.Header) bool {
	line, rest, _ := strings.Cut(s, "\r\n")
	code, ok := fastStatus(line)
	if !ok {
		return false
	}
	n := 0
	if rest != "" {
		n = strings.Count(rest, "\r\n") + 1
	}
	if n == 0 || n > h1FastFields {
		return false
	}
	vals := fr.vals[:]
	if n > len(vals) {
		vals = make([]string, n)
	}
	h := *reuse
	if h == nil {
		h = make(http.Header, n)
		*reuse = h
	} else {
		clear(h)
	}
	for i := 0; i < n; i++ {
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := fastField(line)
		if !ok {
			return false
		}
		if vv := h[name]; vv != nil {
			h[name] = append(vv, value)
			continue
		}
		vals[i] = value
		h[name] = vals[i : i+1 : i+1]
	}
	if _, ok := h["Transfer-Encoding"]; ok {
		return false
	}
	if _, ok := h["Trailer"]; ok {
		return false
	}
	if httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		return false
	}
	cl := h["Content-Length"]
	if len(cl) != 1 {
		return false
	}
	length, ok := fastLength(cl[0])
	if !ok {
		return false
	}
	fr.resp = http.Response{
		Status: line0(s), StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length,
	}
	if length == 0 {
		fr.resp.Body = http.NoBody
		*reuse = nil
	}
	return true
}

// line0 is the status text of a head's status line: what follows "HTTP/1.1 ".
func line0(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line[len("HTTP/1.1 "):]
}

// fastStatus checks an "HTTP/1.1 NNN reason" status line and returns its code; false for
// another version, a status outside 200–599 or one without a body (204, 304), and any
// control character but HTAB.
func fastStatus(line string) (int, bool) {
	const prefix = "HTTP/1.1 "
	if len(line) < len(prefix)+3 || line[:len(prefix)] != prefix {
		return 0, false
	}
	code := 0
	for _, c := range []byte(line[len(prefix) : len(prefix)+3]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, false
	}
	tail := line[len(prefix)+3:]
	if tail != "" && tail[0] != ' ' {
		return 0, false
	}
	for i := 0; i < len(tail); i++ {
		if !validValueByte(tail[i]) {
			return 0, false
		}
	}
	return code, true
}

// fastField splits a "Name: value" field line: the name made of token bytes, canonicalised
// (no allocation when it already is canonical), the value trimmed of spaces and tabs and
// made of field-value bytes (RFC 9110 §5.5, as net/textproto checks them).
func fastField(line string) (name, value string, ok bool) {
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	name = line[:colon]
	for i := 0; i < len(name); i++ {
		if !httpguts.IsTokenRune(rune(name[i])) {
			return "", "", false
		}
	}
	value = strings.Trim(line[colon+1:], " \t")
	for i := 0; i < len(value); i++ {
		if !validValueByte(value[i]) {
			return "", "", false
		}
	}
	return http.CanonicalHeaderKey(name), value, true
}

// validValueByte reports whether c may appear in a field value: VCHAR, SP, HTAB or
// obs-text (net/textproto's rule).
func validValueByte(c byte) bool {
	return c == '\t' || c >= 0x20 && c != 0x7f
}

// fastLength parses a Content-Length of 1 to 18 decimal digits.
func fastLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// readDirect reads a fast-path body of b.remaining bytes straight from the connection's
// buffer: the last bytes come with io.EOF (as net/http's body does), and an end of stream
// before them is io.ErrUnexpectedEOF.
func (b *h1Body) readDirect(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.pc.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
