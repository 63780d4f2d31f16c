package h1engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is how much body a response holds before its header is committed:
// a handler that writes at most this much and returns gets a Content-Length, a longer body
// is chunked (net/http's bufferBeforeChunkingSize).
const bufferBeforeChunking = 2048

// response is the http.ResponseWriter of one request. One per connection, reset for every
// request: like net/http's, it must not be used after ServeHTTP returns.
type response struct {
	c       *conn
	req     *http.Request
	reqBody *body // the body the engine made (the handler may replace req.Body)
	header  http.Header
	status  int
	is11    bool
	isHEAD  bool

	wroteHeader   bool // the final status was set
	committed     bool // the header went to the connection's buffer
	handlerDone   bool
	contentLength int64 // -1: unknown
	written       int64
	chunking      bool
	closeAfter    bool
	limitHit      bool
	fullDuplex    bool
	userWDL       bool // the handler set a write deadline
	werr          error

	wants10KeepAlive bool
	wantsClose       bool
	expectFailed     bool
	expectContinue   bool // the request waits for 100 Continue

	contMu       sync.Mutex
	canContinue  bool
	continueSent bool

	// Taken from the header at WriteHeader (what net/http's header clone keeps).
	head       []byte   // status line and the headers written as they are
	pend       []byte   // body bytes before the commit
	cl, te, cn []string // Content-Length, Transfer-Encoding, Connection values
	clPresent  bool
	cnPresent  bool
	haveType   bool
	hasDate    bool
	trailers   bool
	ce         string
	declared   []string // declared trailer names, canonical
}

func (w *response) reset(req *http.Request) {
	head, pend, declared := w.head[:0], w.pend[:0], w.declared[:0]
	c := w.c
	*w = response{c: c, req: req, head: head, pend: pend, declared: declared, contentLength: -1}
	w.reqBody, _ = req.Body.(*body)
	w.header = make(http.Header)
	w.is11 = req.ProtoAtLeast(1, 1)
	w.isHEAD = req.Method == http.MethodHead
	cn := req.Header["Connection"]
	w.wants10KeepAlive = req.ProtoMajor == 1 && req.ProtoMinor == 0 && headerValuesContainsToken(cn, "keep-alive")
	w.wantsClose = req.Close || headerValuesContainsToken(cn[:min(len(cn), 1)], "close")
	var expect string
	if e := req.Header["Expect"]; len(e) > 0 {
		expect = e[0]
	}
	if headerValuesContainsToken([]string{expect}, "100-continue") {
		if w.is11 && req.ContentLength != 0 {
			w.expectContinue, w.canContinue = true, true
		}
	} else if expect != "" {
		w.expectFailed = true
	}
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == 204, status == 304:
		return false
	}
	return true
}

// WriteHeader implements http.ResponseWriter with net/http's rules: 1xx answers (but 101)
// are sent at once with the current header; later header changes do not change the
// response, except trailers.
func (w *response) WriteHeader(code int) {
	if w.c.hijacked {
		w.c.logf("http: response.WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		w.c.logf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 101 || code > 199 {
		w.disableContinue()
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		b := appendStatusLine(w.head[:0], w.is11, code)
		for k, vv := range w.header {
			if k == "Content-Length" || k == "Transfer-Encoding" || !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			for _, v := range vv {
				b = appendField(b, k, v)
			}
		}
		b = append(b, "\r\n"...)
		w.head = b
		_, _ = w.c.bw.Write(b)
		if err := w.c.bw.Flush(); err != nil && w.werr == nil {
			w.werr = err
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if vv := w.header["Content-Length"]; len(vv) > 0 && vv[0] != "" {
		v, err := strconv.ParseInt(vv[0], 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.logf("http: invalid Content-Length of %q", vv[0])
			delete(w.header, "Content-Length")
		}
	}
	w.snapshot()
}

// snapshot serializes the status line and every header whose fate does not depend on the
// body, and notes the facts the commit decides with.
func (w *response) snapshot() {
	b := appendStatusLine(w.head[:0], w.is11, w.status)
	for k, vv := range w.header {
		switch k {
		case "Content-Length":
			w.clPresent, w.cl = true, vv
			continue
		case "Transfer-Encoding":
			w.te = vv
			continue
		case "Connection":
			w.cnPresent, w.cn = true, vv
			continue
		case "Content-Type":
			w.haveType = true
			if w.status == http.StatusNotModified {
				continue
			}
		case "Content-Encoding":
			if len(vv) > 0 {
				w.ce = vv[0]
			}
		case "Date":
			w.hasDate = true
		case "Trailer":
			w.trailers = true
			for _, v := range vv {
				for f := range strings.SplitSeq(v, ",") {
					if f = strings.TrimSpace(f); f != "" {
						if key := http.CanonicalHeaderKey(f); httpguts.ValidTrailerHeader(key) {
							w.declared = append(w.declared, key)
						}
					}
				}
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	w.head = b
}

func appendStatusLine(b []byte, is11 bool, code int) []byte {
	if is11 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	if text := http.StatusText(code); text != "" {
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		b = append(b, text...)
		return append(b, "\r\n"...)
	}
	return fmt.Appendf(b, "%03d status code %d\r\n", code, code)
}

// appendField appends "k: v\r\n" with net/http's sanitizing: CR and LF become spaces and
// surrounding whitespace is trimmed, so a value cannot inject a header line.
func appendField(b []byte, k, v string) []byte {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	}
	v = strings.Trim(v, " \t\r\n")
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

func first(vv []string) string {
	if len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// commit decides the framing of the response (net/http's chunkWriter.writeHeader: the
// same decisions in the same order) and writes its head and p, the first body bytes.
func (w *response) commit(p []byte) {
	w.committed = true
	keepAlives := w.c.srv.keepAlives()
	allowed := bodyAllowedForStatus(w.status)
	te := first(w.te)
	hasTE := te != ""
	var autoCL bool
	if w.handlerDone && !w.trailers && !hasTE && allowed && !w.clPresent && (!w.isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		autoCL = true
	}
	if w.wants10KeepAlive && keepAlives && first(w.cl) != "" && first(w.cn) == "keep-alive" {
		w.closeAfter = false
	}
	hasCL := w.contentLength != -1
	var setConn string
	if w.wants10KeepAlive && (w.isHEAD || hasCL || !allowed) {
		if !w.cnPresent {
			setConn = "keep-alive"
		}
	} else if !w.is11 || w.wantsClose {
		w.closeAfter = true
	}
	if first(w.cn) == "close" || !keepAlives {
		w.closeAfter = true
	}
	if w.expectContinue && w.reqBody != nil {
		if eof, _ := w.reqBody.state(); !eof {
			w.closeAfter = true
		}
	}
	dropConn := false
	if w.req.ContentLength != 0 && !w.closeAfter && !w.fullDuplex && w.reqBody != nil {
		if w.discardBody() {
			w.closeAfter, w.limitHit = true, true
			dropConn, setConn = true, "close"
		}
	}
	var setType string
	dropCL, dropTE := false, false
	if allowed {
		if w.ce == "" && !w.haveType && !hasTE && len(p) > 0 {
			setType = http.DetectContentType(p)
		}
	} else {
		dropCL, dropTE = true, true
	}
	if hasCL && hasTE && te != "identity" {
		w.c.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		dropCL, hasCL = true, false
	}
	var setTE string
	switch {
	case w.isHEAD || !allowed || w.status == http.StatusNoContent:
		dropTE = true
	case hasCL:
		dropTE = true
	case w.is11:
		if hasTE && te == "identity" {
			w.closeAfter, dropTE = true, true
		} else {
			w.chunking, setTE = true, "chunked"
			if hasTE && te == "chunked" {
				dropTE = true
			}
		}
	default:
		w.closeAfter, dropTE = true, true
	}
	if w.chunking {
		dropCL = true
	}
	if w.closeAfter && (!keepAlives || !hasToken(first(w.cn), "close")) && !w.isProtocolSwitch() {
		dropConn = true
		if w.is11 {
			setConn = "close"
		}
	}
	b := w.head
	if !dropCL {
		for _, v := range w.cl {
			b = appendField(b, "Content-Length", v)
		}
	}
	if !dropTE {
		for _, v := range w.te {
			b = appendField(b, "Transfer-Encoding", v)
		}
	}
	if !dropConn {
		for _, v := range w.cn {
			b = appendField(b, "Connection", v)
		}
	}
	if setType != "" {
		b = append(append(append(b, "Content-Type: "...), setType...), "\r\n"...)
	}
	if setConn != "" {
		b = append(append(append(b, "Connection: "...), setConn...), "\r\n"...)
	}
	if setTE != "" {
		b = append(append(append(b, "Transfer-Encoding: "...), setTE...), "\r\n"...)
	}
	if !w.hasDate {
		b = append(b, "Date: "...)
		b = append(b, w.c.dateValue()...)
		b = append(b, "\r\n"...)
	}
	if autoCL {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.head = b
	if _, err := w.c.bw.Write(b); err != nil && w.werr == nil {
		w.werr = err
	}
	w.writeBody(p)
}

// discardBody reads what the handler left of the request body (at most 256 KiB) so that the
// connection can be reused; true means the rest was too large (the connection closes).
func (w *response) discardBody() (tooBig bool) {
	b := w.reqBody
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		if !b.sawEOF {
			w.closeAfter = true
		}
		return false
	case !b.chunked && b.remaining >= maxPostHandlerReadBytes:
		return true
	}
	var buf [4096]byte
	var total int64
	for {
		n, err := b.readLocked(buf[:])
		total += int64(n)
		if err == nil && total > maxPostHandlerReadBytes {
			return true
		}
		switch {
		case err == nil:
		case errors.Is(err, http.ErrBodyReadAfterClose):
			return false
		case err == io.EOF:
			b.closed = true
			return false
		default:
			w.closeAfter = true
			return false
		}
	}
}

func (w *response) isProtocolSwitch() bool {
	return w.status == http.StatusSwitchingProtocols && w.header.Get("Upgrade") != "" &&
		httpguts.HeaderValuesContainsToken(w.header["Connection"], "Upgrade")
}

// hasToken reports whether token is one of the comma-separated elements of v.
func hasToken(v, token string) bool {
	return headerValuesContainsToken([]string{v}, token)
}

// writeBody writes body bytes after the commit, chunk-framed when chunking.
func (w *response) writeBody(p []byte) {
	if len(p) == 0 || w.isHEAD {
		return
	}
	bw := w.c.bw
	var err error
	if w.chunking {
		var hex [18]byte
		h := strconv.AppendInt(hex[:0], int64(len(p)), 16)
		h = append(h, '\r', '\n')
		_, _ = bw.Write(h)
		_, _ = bw.Write(p)
		_, err = bw.WriteString("\r\n")
	} else {
		_, err = bw.Write(p)
	}
	if err != nil && w.werr == nil {
		w.werr = err
	}
}

// startWrite does what precedes the writing of n body bytes: the implicit WriteHeader(200)
// and net/http's checks, which count the bytes as written.
func (w *response) startWrite(n int) error {
	if w.c.hijacked {
		w.c.logf("http: response.Write on hijacked connection")
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return nil
	}
	if !bodyAllowedForStatus(w.status) {
		return http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength != -1 && w.written > w.contentLength {
		return http.ErrContentLength
	}
	return nil
}

// WriteString implements io.StringWriter: a string that fits before the header is
// committed is buffered without the []byte copy io.WriteString would make.
func (w *response) WriteString(s string) (int, error) {
	if w.committed || w.c.hijacked || len(w.pend)+len(s) > bufferBeforeChunking {
		return w.Write([]byte(s))
	}
	if err := w.startWrite(len(s)); err != nil || len(s) == 0 {
		return 0, err
	}
	w.pend = append(w.pend, s...)
	return len(s), nil
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if err := w.startWrite(len(p)); err != nil || len(p) == 0 {
		return 0, err
	}
	n := len(p)
	if !w.committed {
		if len(w.pend)+len(p) <= bufferBeforeChunking {
			w.pend = append(w.pend, p...)
			return n, nil
		}
		if len(w.pend) == 0 {
			w.commit(p)
			return n, w.werr
		}
		k := bufferBeforeChunking - len(w.pend)
		w.pend = append(w.pend, p[:k]...)
		p = p[k:]
		w.commit(w.pend)
	}
	w.writeBody(p)
	if w.werr != nil {
		return 0, w.werr
	}
	return n, nil
}

// FlushError sends what was written so far (committing the header); http.ResponseController
// calls it.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.pend)
	}
	if err := w.c.bw.Flush(); err != nil && w.werr == nil {
		w.werr = err
	}
	return w.werr
}

// dateValue returns the Date header value for now, formatted once per second per
// connection.
func (c *conn) dateValue() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != c.dateSec || c.date == nil {
		c.dateSec = sec
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
	}
	return c.date
}

// Flush implements http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// SetReadDeadline sets the connection's read deadline (http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rdl = t
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline (http.ResponseController); a
// non-zero one takes the send timeout over from the guard until the response ends.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.userWDL = w.userWDL || !t.IsZero()
	return w.c.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler read the request body after it started the response
// (http.ResponseController); the engine then does not drain the body at the commit.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// Hijack implements http.Hijacker: the handler takes the connection over, with the bytes
// already buffered from it. The header, when written, is flushed first.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if w.handlerDone {
		return nil, nil, errors.New("http: Hijack called after ServeHTTP finished")
	}
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.committed {
		w.commit(w.pend)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.hijacked = true
	c.srv.unwatchConn(c)
	_ = c.rwc.SetDeadline(time.Time{})
	c.rdl = time.Time{}
	c.setState(http.StateHijacked)
	rw := bufio.NewReadWriter(c.br, bufio.NewWriter(c.rwc))
	return c.rwc, rw, nil
}

// disableContinue stops a later body read from sending 100 Continue (the final answer, or
// a 100 the handler sent itself, went first).
func (w *response) disableContinue() {
	w.contMu.Lock()
	w.canContinue = false
	w.contMu.Unlock()
}

// sendContinue answers "100 Continue" at the first read of a body whose request expects it.
func (w *response) sendContinue() {
	if !w.expectContinue {
		return
	}
	w.contMu.Lock()
	defer w.contMu.Unlock()
	if !w.canContinue || w.continueSent {
		return
	}
	w.continueSent = true
	_, _ = w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	_ = w.c.bw.Flush()
}

// continued reports whether 100 Continue was sent.
func (w *response) continued() bool {
	w.contMu.Lock()
	defer w.contMu.Unlock()
	return w.continueSent
}

// sendExpectationFailed answers 417 to an Expect header other than 100-continue.
func (w *response) sendExpectationFailed() {
	w.header.Set("Connection", "close")
	w.WriteHeader(http.StatusExpectationFailed)
	w.finish()
}

// finish ends the response after the handler returned: the header if still pending, the
// last chunk and the trailers, then the flush; the request body is closed.
func (w *response) finish() {
	if w.handlerDone {
		return
	}
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.pend)
	}
	bw := w.c.bw
	if w.chunking {
		b := append(w.head[:0], "0\r\n"...)
		b = w.appendTrailers(b)
		b = append(b, "\r\n"...)
		w.head = b
		_, _ = bw.Write(b)
	}
	if err := bw.Flush(); err != nil && w.werr == nil {
		w.werr = err
	}
	if w.userWDL {
		_ = w.c.rwc.SetWriteDeadline(time.Time{})
	}
	if w.reqBody != nil {
		_ = w.reqBody.Close()
	}
}

// appendTrailers appends the trailer fields: http.TrailerPrefix keys and the declared ones.
func (w *response) appendTrailers(b []byte) []byte {
	for k, vv := range w.header {
		if kk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidHeaderFieldName(kk) {
			for _, v := range vv {
				b = appendField(b, kk, v)
			}
		}
	}
	for _, k := range w.declared {
		for _, v := range w.header[k] {
			b = appendField(b, k, v)
		}
	}
	return b
}

// reusable reports whether the connection can serve another request.
func (w *response) reusable() bool {
	if w.closeAfter || w.limitHit || w.werr != nil || !w.c.srv.keepAlives() {
		return false
	}
	if !w.isHEAD && w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.contentLength != w.written {
		return false
	}
	if w.reqBody != nil {
		if _, early := w.reqBody.state(); early {
			return false
		}
	}
	return true
}

// sniffLen is how much of a body DetectContentType looks at.
const sniffLen = 512

// ReadFrom implements io.ReaderFrom as net/http's writer does: after the first 512 bytes
// (for Content-Type sniffing) an unchunked body goes to the connection's ReadFrom, which
// the guard keeps (sendfile, under the send timeout).
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.c.rwc.(io.ReaderFrom)
	if !ok || w.c.hijacked {
		return io.Copy(writerOnly{w}, src)
	}
	var n int64
	if !w.committed {
		n0, err := io.Copy(writerOnly{w}, io.LimitReader(src, sniffLen))
		n += n0
		if err != nil || n0 < sniffLen {
			return n, err
		}
	}
	if err := w.FlushError(); err != nil {
		return n, err
	}
	if !w.chunking && bodyAllowedForStatus(w.status) && !w.isHEAD {
		n0, err := rf.ReadFrom(src)
		n += n0
		w.written += n0
		if err != nil && w.werr == nil {
			w.werr = err
		}
		return n, err
	}
	n0, err := io.Copy(writerOnly{w}, src)
	return n + n0, err
}

// writerOnly hides ReadFrom so that io.Copy uses Write.
type writerOnly struct{ io.Writer }
