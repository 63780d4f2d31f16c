package h1engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/conduitproxy/conduit/core/h1guard"
)

// errTooLarge is a request head over Server.MaxHeaderBytes (answered 431).
var errTooLarge = errors.New("h1engine: request head too large")

// errTrailerEOF is the end of stream inside a trailer section (net/http's error).
var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// errUnvalidated is a request head the guard did not validate (answered 400).
var errUnvalidated = errors.New("h1engine: request head not validated by the guard")

// badRequestError is answered "400 Bad Request: <text>" as net/http does.
type badRequestError string

// Error returns the text written after the 400 status line.
func (e badRequestError) Error() string { return "Bad Request: " + string(e) }

// statusError is answered "<code> <text>: <detail>" as net/http does.
type statusError struct {
	code int
	text string
}

// Error returns the status code and its text.
func (e statusError) Error() string { return itoa(e.code) + " " + e.text }

func itoa(n int) string { return strconv.Itoa(n) }

// readHead reads a request head (request line and header lines, CRLF included, the empty
// line excluded) into c.head.
func (c *conn) readHead() error {
	c.head = c.head[:0]
	limit := c.srv.maxHeaderBytes()
	for {
		line, err := c.br.ReadSlice('\n')
		if len(c.head)+len(line) > limit {
			return errTooLarge
		}
		if err == bufio.ErrBufferFull {
			c.head = append(c.head, line...)
			continue
		}
		if err != nil {
			if err == io.EOF && len(c.head)+len(line) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(c.head) > 0 && (len(line) == 2 && line[0] == '\r' || len(line) == 1) && c.head[len(c.head)-1] == '\n' {
			return nil
		}
		c.head = append(c.head, line...)
	}
}

// nextLine splits s at its first line end (CRLF, or a bare LF the guard would have refused).
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseVersion accepts the two versions the guard lets through.
func parseVersion(v string) (major, minor int, ok bool) {
	switch v {
	case "HTTP/1.1":
		return 1, 1, true
	case "HTTP/1.0":
		return 1, 0, true
	}
	return 0, 0, false
}

// readRequest reads and builds the next request. The guard has validated its framing (one
// SP-separated request line, CRLF line ends, token names, a single Host, Content-Length or
// Transfer-Encoding: chunked, never both), so the head is split without a second
// validation; what net/http checks beyond the guard (URL parsing, Expect) is checked here.
func (c *conn) readRequest(ctx context.Context) (*http.Request, error) {
	if err := c.readHead(); err != nil {
		return nil, err
	}
	s := c.headString(c.head)
	line, rest := nextLine(s)
	method, after, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(after, " ")
	if !ok1 || !ok2 {
		return nil, badRequestError("malformed HTTP request " + strconv.Quote(line))
	}
	major, minor, ok := parseVersion(proto)
	if !ok {
		return nil, statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	c.heads++
	if h1guard.Heads(c.rwc) < c.heads {
		// The guard passed these bytes through (an upgrade that was not performed, a TLS
		// record on a plain port): they were not validated, so they are not served.
		return nil, errUnvalidated
	}
	m := new(reqMem)
	u := &m.url
	if !parseOrigin(u, target) {
		pu, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, err
		}
		u = pu
	}
	n := strings.Count(rest, "\n")
	// Room for what the pipeline adds to a proxied request (X-Request-Id, then the proxy's
	// X-Forwarded-For, -Proto, -Host, X-Real-Ip, Forwarded and Via; n counts Host, which
	// is not kept): the map does not grow, which costs three allocations past 8 keys.
	hdr := make(http.Header, n+headerRoom)
	strs := m.strs[:]
	if n > len(strs) {
		strs = make([]string, n)
	}
	var host string
	hosts := 0
	for rest != "" {
		line, rest = nextLine(rest)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, badRequestError("malformed MIME header line: " + line)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		value = trimOWS(value)
		if key == "Host" {
			hosts++
			host = value
			continue
		}
		if vv := hdr[key]; vv != nil {
			hdr[key] = append(vv, value)
			continue
		}
		strs[0] = value
		hdr[key] = strs[:1:1]
		strs = strs[1:]
	}
	if hosts > 1 {
		return nil, badRequestError("too many Host headers")
	}
	if major == 1 && minor == 1 && hosts == 0 {
		return nil, badRequestError("missing required Host header")
	}
	if pragma := hdr["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	r := &c.tmpl
	*r = http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     hdr,
		Host:       u.Host,
		RemoteAddr: c.remote,
		RequestURI: target,
		TLS:        c.tlsState,
	}
	if r.Host == "" {
		r.Host = host
	}
	conns := hdr["Connection"]
	hasClose := headerValuesContainsToken(conns, "close")
	if minor == 0 {
		r.Close = hasClose || !headerValuesContainsToken(conns, "keep-alive")
	} else {
		r.Close = hasClose
	}
	if err := c.setBody(r, m); err != nil {
		return nil, err
	}
	var cancel context.CancelFunc
	var rc *reqContext
	var rctx context.Context
	if ctx.Done() == nil {
		rc = &m.ctx
		rc.parent = ctx
		rctx = rc
	} else {
		rctx, cancel = context.WithCancel(ctx)
	}
	if f := c.srv.RequestContext; f != nil {
		rctx = f(rctx)
		c.userCtx = rctx
	}
	req := r.WithContext(rctx)
	c.res.reset(req)
	if b, ok := req.Body.(*body); ok {
		b.req = req
	}
	c.beginRequest(cancel, rc, req.Body == http.NoBody)
	return req, nil
}

// headerRoom is how many keys beyond the request's header lines its header map is made
// for; see readRequest.
const headerRoom = 6

// headChunk is the size of the string chunks request heads are carved from.
const headChunk = 1024

// headString returns b as a string. Heads up to half a chunk share the connection's
// current chunk, a fresh one being made when the rest is too short: one allocation for
// several requests' heads instead of one each. Chunk bytes are written once and never
// changed, so the strings stay immutable; a handler that keeps one keeps its chunk alive.
func (c *conn) headString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > headChunk/2 {
		return string(b)
	}
	if len(b) > len(c.chunk) {
		c.chunk = make([]byte, headChunk)
	}
	n := copy(c.chunk, b)
	s := unsafe.String(&c.chunk[0], n)
	c.chunk = c.chunk[n:]
	return s
}

// reqMem is what a request points to beyond its head string, header map and
// *http.Request, in one allocation: the URL of an origin-form target, the storage of up to
// eight header values, the body reader and the context. A new one is made for every
// request (a handler may keep what it was given).
type reqMem struct {
	url  url.URL
	strs [8]string
	body body
	ctx  reqContext
}

// setBody sets the request's body, length, transfer coding and declared trailers.
func (c *conn) setBody(r *http.Request, m *reqMem) error {
	chunked := false
	if te, ok := r.Header["Transfer-Encoding"]; ok {
		if len(te) != 1 || !strings.EqualFold(trimOWS(te[0]), "chunked") {
			return badRequestError("unsupported transfer encoding")
		}
		chunked = true
		delete(r.Header, "Transfer-Encoding")
		r.TransferEncoding = []string{"chunked"}
	}
	var cl int64
	if v, ok := r.Header["Content-Length"]; ok {
		if chunked || len(v) != 1 {
			return badRequestError("bad Content-Length")
		}
		n, err := strconv.ParseUint(v[0], 10, 63)
		if err != nil {
			return badRequestError("bad Content-Length")
		}
		cl = int64(n)
	}
	if vv, ok := r.Header["Trailer"]; ok && chunked {
		delete(r.Header, "Trailer")
		r.Trailer = http.Header{}
		for _, v := range vv {
			for f := range strings.SplitSeq(v, ",") {
				if f = trimOWS(f); f == "" {
					continue
				}
				key := http.CanonicalHeaderKey(f)
				switch key {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return errors.New("bad trailer key " + strconv.Quote(key)) // plain 400, as net/http
				}
				r.Trailer[key] = nil
			}
		}
	}
	switch {
	case chunked:
		r.ContentLength = -1
		m.body = body{c: c, chunked: true, src: httputil.NewChunkedReader(c.br)}
		r.Body = &m.body
	case cl > 0:
		r.ContentLength = cl
		m.body = body{c: c, remaining: cl}
		r.Body = &m.body
	default:
		r.Body = http.NoBody
	}
	return nil
}

// headerValuesContainsToken reports whether any comma-separated element of values is token
// (case-insensitively).
func headerValuesContainsToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(trimOWS(f), token) {
				return true
			}
		}
	}
	return false
}

// maxPostHandlerReadBytes is how much of an unread request body is drained after the
// handler to keep the connection (net/http's value).
const maxPostHandlerReadBytes = 256 << 10

// body is a request body read from the connection's buffered reader.
type body struct {
	c         *conn
	req       *http.Request
	chunked   bool
	src       io.Reader // chunked decoder
	remaining int64     // Content-Length bytes left

	mu     sync.Mutex
	sawEOF bool
	closed bool
	early  bool // closed before its end: the connection cannot be reused
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	b.c.res.sendContinue()
	if !b.chunked {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err := b.c.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.finish()
			return n, io.EOF
		}
		if err == io.EOF {
			// As net/http: the short body reports its error once, then reads as ended.
			b.finish()
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	n, err := b.src.Read(p)
	if err == io.EOF {
		if terr := b.readTrailer(); terr != nil {
			return n, terr
		}
		b.finish()
	}
	return n, err
}

func (b *body) finish() {
	b.sawEOF = true
	b.c.bodyFinished()
}

// readTrailer reads the trailer section after the last chunk into the request's Trailer.
func (b *body) readTrailer() error {
	var tr http.Header
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return errTrailerEOF
			}
			return err
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			break
		}
		s := strings.TrimRight(string(line), "\r\n")
		name, value, ok := strings.Cut(s, ":")
		if !ok {
			return badRequestError("malformed trailer line")
		}
		if tr == nil {
			tr = http.Header{}
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		tr[key] = append(tr[key], trimOWS(value))
	}
	if tr == nil {
		return nil
	}
	if b.req.Trailer == nil {
		b.req.Trailer = tr
		return nil
	}
	for k, vv := range tr {
		b.req.Trailer[k] = vv
	}
	return nil
}

// Close implements io.Closer. An unread rest of at most 256 KiB is drained so that the
// connection can serve the next request; a longer one closes the connection.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.drainLocked()
}

// drainLocked reads the rest of the body, at most maxPostHandlerReadBytes.
func (b *body) drainLocked() error {
	if b.sawEOF {
		return nil
	}
	if !b.chunked && b.remaining > maxPostHandlerReadBytes {
		b.early = true
		return nil
	}
	if b.c.res.expectContinue && !b.c.res.continued() {
		b.early = true // the client waits for 100 Continue: do not ask for the body now
		return nil
	}
	var buf [4096]byte
	var total int64
	for total <= maxPostHandlerReadBytes {
		n, err := b.readLocked(buf[:])
		total += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			b.early = true
			return err
		}
	}
	b.early = true
	return nil
}

// state reports whether the body was read to its end and whether it was closed early.
func (b *body) state() (sawEOF, early bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sawEOF, b.early
}
