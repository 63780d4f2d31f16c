package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/conduitproxy/conduit/core"
)

// h1Client is the upstream client of the hot path: HTTP/1.1 requests without a body or with
// a declared body of at most h1MaxBody bytes, to `http://` and `https://` upstreams (HTTP/1.1
// only: not with `http2: true`, whose ALPN and h2c stay on the Transport). It writes the request and
// reads the response in the calling handler's goroutine, on a pooled keep-alive
// connection, where net/http's Transport hands every request to a writeLoop and every
// response back from a readLoop goroutine. On a proxy those two hand-offs (four goroutine
// wake-ups per request) were a third of the CPU per request at a fixed rate and most of
// the added tail latency (docs/benchmarks.md).
//
// Everything else — chunked or large request bodies, upgrades, HTTP/2 upstreams, health
// probes, mirrors — stays on http.Transport, which overlaps writing a body with reading an
// early response. Like the Transport, a bodyless idempotent request that fails on a reused
// connection before any response byte arrived (the upstream closed it while idle) is retried
// once on a fresh one. A request that may not be sent twice (a body, or a method that is not
// idempotent) is never retried: a reused connection is checked first, without blocking, for
// an end of stream or unexpected bytes (connectionAlive), as the Transport's idle reader
// would have noticed them.
type h1Client struct {
	dialer      net.Dialer
	tls         *tls.Config   // for https:// upstreams; ServerName is set per pool
	serverName  string        // upstreamTls.serverName; "" = the URL's host
	send        time.Duration // writing the request (timeout.sendMs); 0 = none
	firstByte   time.Duration // response header timeout; 0 = none
	maxIdle     int           // idle connections kept per upstream address
	idleTimeout time.Duration

	mu    sync.Mutex
	hosts map[string]*h1Pool
}

// CloseIdleConnections closes every idle connection of every pool. The shared store calls it
// when no generation uses the client any more (core.SharedUse.Release), so the keep-alive
// connections of removed routes do not wait for their idle timeout.
func (c *h1Client) CloseIdleConnections() {
	c.mu.Lock()
	pools := make([]*h1Pool, 0, len(c.hosts))
	for _, p := range c.hosts {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		for i, pc := range p.idle {
			pc.nc.Close()
			p.idle[i] = nil
		}
		p.idle = p.idle[:0]
		p.mu.Unlock()
	}
}

// Response header limit: as net/http's Transport default (MaxResponseHeaderBytes).
const h1MaxHeaderBytes = 10 << 20

// h1Max1xx bounds the informational responses read before the final one (as the Transport).
const h1Max1xx = 5

// h1BufferSize is the read and write buffer of each upstream connection.
const h1BufferSize = 16 << 10

// aLongTimeAgo is a deadline in the past: setting it unblocks a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// errH1Switch is returned for a 101 to a request that asked for no upgrade (RFC 9110 §15.2.2).
var errH1Switch = errors.New("upstream switched protocols without an upgrade request")

func newH1Client(ts transportSettings) *h1Client {
	tc := ts.tlsConfig()
	tc.NextProtos = []string{"http/1.1"}
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	return &h1Client{
		dialer:      net.Dialer{Timeout: ts.connect, KeepAlive: 30 * time.Second},
		tls:         tc,
		serverName:  ts.serverName,
		send:        ts.send,
		firstByte:   ts.firstByte,
		maxIdle:     ts.maxIdle,
		idleTimeout: ts.idleTimeout,
		hosts:       make(map[string]*h1Pool),
	}
}

// h1MaxBody is the largest request body the h1Client sends itself (a declared
// Content-Length): small enough to go into the socket buffers at once, so that an upstream
// that answers before reading it cannot stall the write.
const h1MaxBody = 64 << 10

// h1Eligible reports whether a request may take the h1Client path: no upgrade, and no body
// or a declared one of at most h1MaxBody bytes. Requests that must not be retried need the
// liveness check, which only some platforms have.
func h1Eligible(method string, contentLength int64, hasBody, upgrade bool) bool {
	if upgrade {
		return false
	}
	if hasBody && (contentLength <= 0 || contentLength > h1MaxBody) {
		return false
	}
	return h1Retryable(method, hasBody) || canCheckAlive
}

// h1Retryable reports whether a request may be sent again after a reused connection turned
// out to be closed: no body to replay and an idempotent method.
func h1Retryable(method string, hasBody bool) bool {
	if hasBody {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodDelete:
		return true
	}
	return false
}

// pool returns the idle-connection pool of scheme://addr (host is the URL's host name,
// for TLS server names).
func (c *h1Client) pool(scheme, addr, host string) *h1Pool {
	key := scheme + "://" + addr
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.hosts[key]
	if p == nil {
		p = &h1Pool{client: c, addr: addr}
		if scheme == "https" {
			p.tls = c.tls.Clone()
			p.tls.ServerName = c.serverName
			if p.tls.ServerName == "" {
				p.tls.ServerName = host
			}
		}
		c.hosts[key] = p
	}
	return p
}

// poolFor returns the pool of u's scheme and address (default ports filled in).
func (c *h1Client) poolFor(u *url.URL) *h1Pool {
	addr, host := u.Host, u.Hostname()
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(host, port)
	}
	return c.pool(u.Scheme, addr, host)
}

// h1Pool keeps the idle connections to one upstream address, most recently used first.
type h1Pool struct {
	client *h1Client
	addr   string
	tls    *tls.Config // nil: plain TCP

	mu       sync.Mutex
	idle     []*h1Conn
	sweeping bool
}

// roundTrip sends req (no body, or a declared one of at most h1MaxBody bytes) and returns
// the final response, whose Body reads from the connection and gives it back to the pool
// at EOF. client is the client's request (nil in tests): its connection is watched so that
// the exchange ends when the client goes away; base is its context, watched instead when
// the connection cannot be (HTTP/2). deadline (zero = none) bounds the whole exchange,
// body included; now is the attempt's start. Informational responses other than 100 are
// forwarded to w (nil: dropped).
func (p *h1Pool) roundTrip(client *http.Request, base context.Context, req *http.Request, deadline, now time.Time, w http.ResponseWriter) (*http.Response, error) {
	retryable := h1Retryable(req.Method, req.Body != nil)
	for try := 0; ; try++ {
		pc, reused, err := p.get(base, deadline, now, !retryable)
		if err != nil {
			return nil, err
		}
		resp, err, stale := pc.exchange(client, base, req, deadline, now, w)
		if err == nil {
			return resp, nil
		}
		pc.close()
		if !(retryable && stale && reused && try == 0 && base.Err() == nil) {
			return nil, err
		}
	}
}

// get returns an idle connection (reused) or dials a new one. check asks that a reused
// connection be checked for liveness first (a request that cannot be retried).
func (p *h1Pool) get(ctx context.Context, deadline, now time.Time, check bool) (pc *h1Conn, reused bool, err error) {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		pc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if p.client.idleTimeout <= 0 || now.Sub(pc.idleAt) < p.client.idleTimeout {
			if check && !pc.readBy.IsZero() && !pc.readBy.After(now) {
				// A read deadline in the past would fail the liveness check's read.
				pc.setDeadline(true, time.Time{}, now)
			}
			if check && !connectionAlive(pc.raw) {
				pc.nc.Close()
				continue
			}
			p.mu.Unlock()
			return pc, true, nil
		}
		pc.nc.Close() // every connection below this one has idled even longer
		for i, old := range p.idle {
			old.nc.Close()
			p.idle[i] = nil
		}
		p.idle = p.idle[:0]
	}
	p.mu.Unlock()
	pc, err = p.dial(ctx, deadline)
	return pc, false, err
}

// dial opens a new connection (TCP, and TLS for https://) within the connect timeout and
// deadline (zero: none).
func (p *h1Pool) dial(ctx context.Context, deadline time.Time) (*h1Conn, error) {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	raw, err := p.client.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	nc := raw
	if p.tls != nil {
		hctx := ctx
		if t := p.client.dialer.Timeout; t > 0 { // the handshake gets the connect timeout too
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		nc = tc
	}
	pc := &h1Conn{nc: nc, raw: raw, pool: p}
	pc.lim.r, pc.lim.pc = nc, pc
	pc.br = bufio.NewReaderSize(&pc.lim, h1BufferSize)
	pc.bw = bufio.NewWriterSize(nc, h1BufferSize)
	return pc, nil
}

// prewarm opens connections until n are idle in the pool (healthCheck.prewarmConnections),
// at most n dials and never beyond the pool's size. It returns the first dial error.
func (p *h1Pool) prewarm(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		p.mu.Lock()
		have := len(p.idle)
		p.mu.Unlock()
		if have >= n || have >= p.client.maxIdle {
			return nil
		}
		pc, err := p.dial(ctx, time.Time{})
		if err != nil {
			return err
		}
		pc.usedAt = time.Now()
		p.put(pc)
	}
	return nil
}

// put returns pc to the pool, or closes it when the pool is full. Its idle time counts from
// the start of the exchange that used it (one clock read less; it only makes the idle
// timeout end a little early).
func (p *h1Pool) put(pc *h1Conn) {
	pc.idleAt = pc.usedAt
	p.mu.Lock()
	if len(p.idle) >= p.client.maxIdle {
		p.mu.Unlock()
		pc.nc.Close()
		return
	}
	p.idle = append(p.idle, pc)
	if !p.sweeping && p.client.idleTimeout > 0 {
		p.sweeping = true
		time.AfterFunc(p.client.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes connections idle longer than the idle timeout (the upstream has most likely
// closed them; without a reader goroutine nothing else would notice) and re-arms itself
// while connections remain.
func (p *h1Pool) sweep() {
	limit := time.Now().Add(-p.client.idleTimeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(p.idle) && !p.idle[n].idleAt.After(limit) {
		p.idle[n].nc.Close()
		n++
	}
	if n > 0 {
		rest := copy(p.idle, p.idle[n:])
		clear(p.idle[rest:])
		p.idle = p.idle[:rest]
	}
	if len(p.idle) == 0 {
		p.sweeping = false
		return
	}
	time.AfterFunc(p.client.idleTimeout, p.sweep)
}

// h1Conn is one upstream connection with its buffers.
type h1Conn struct {
	nc     net.Conn // the connection requests are written to (TLS or plain)
	raw    net.Conn // the TCP connection under it, for the liveness check
	lim    headerLimitReader
	br     *bufio.Reader
	bw     *bufio.Writer
	pool   *h1Pool
	hdr    http.Header // fast-path response header map, reused (h1response.go)
	idleAt time.Time   // when it went back to the pool
	usedAt time.Time   // start of the exchange using it

	writeBy  time.Time   // the write deadline last set on nc
	readBy   time.Time   // the read deadline last set on nc
	bodyBy   time.Time   // the read deadline of the body, set before a body read reaches nc
	bodyWait bool        // bodyBy is still to be set
	poisoned atomic.Bool // the client went away: deadlines are in the past for good
	gone     func()      // ClientGone as a func value, for context.AfterFunc (watchClient)
}

func (pc *h1Conn) close() { pc.nc.Close() }

// ClientGone implements core.ClientWatcher: the client went away, so the pending read or
// write ends, and the connection is never used again.
func (pc *h1Conn) ClientGone() {
	pc.poisoned.Store(true)
	_ = pc.nc.SetDeadline(aLongTimeAgo)
}

// setDeadline makes t (zero: none) the read (read) or write deadline from now on, without
// undoing a ClientGone that raced with it. The connection's deadline is left as it is when
// it is within deadlineSlack of t: back-to-back exchanges on one connection then set it
// once in a while rather than twice per exchange (each set takes the poller's lock and
// moves a timer).
func (pc *h1Conn) setDeadline(read bool, t, now time.Time) {
	last := &pc.writeBy
	if read {
		last = &pc.readBy
		pc.bodyWait = false
	}
	if closeEnough(*last, t, now) {
		return
	}
	if read {
		_ = pc.nc.SetReadDeadline(t)
	} else {
		_ = pc.nc.SetWriteDeadline(t)
	}
	*last = t
	if pc.poisoned.Load() {
		_ = pc.nc.SetDeadline(aLongTimeAgo)
	}
}

// deadlineSlack is the fraction of a timeout by which a deadline already set may differ
// from the one asked for and be kept: a timeout may end up to 1/64 of its length early or
// late (about 0.5 s of the default 30 s first-byte timeout). docs/proxy.md says so.
const deadlineSlack = 64

// closeEnough reports whether the deadline set may stand for want, asked for at now: equal,
// or both set and within (want-now)/deadlineSlack of each other. A set deadline that close
// to a future want is itself in the future, so it never fails a read at once.
func closeEnough(set, want, now time.Time) bool {
	if set.Equal(want) {
		return true
	}
	if set.IsZero() || want.IsZero() {
		return false
	}
	slack := want.Sub(now) / deadlineSlack
	d := set.Sub(want)
	return slack > 0 && d <= slack && d >= -slack
}

// bodyDeadline makes t the read deadline of the body: set before the first body read that
// reaches the connection (headerLimitReader), so a body that came in with the head sets none.
func (pc *h1Conn) bodyDeadline(t time.Time) {
	pc.bodyBy = t
	pc.bodyWait = true
}

// clientWatch is how an exchange hears that the client went away: a core.WatchClient
// registration (HTTP/1, no allocation) or a context.AfterFunc on the request's context.
type clientWatch struct {
	client *http.Request // WatchClient registration; nil when none
	pc     *h1Conn
	stop   func() bool // AfterFunc registration; nil when none
}

// watchClient arms the cheapest watch available for pc.
func watchClient(client *http.Request, base context.Context, pc *h1Conn) clientWatch {
	if client != nil && core.WatchClient(client, pc) {
		return clientWatch{client: client, pc: pc}
	}
	if base.Done() != nil {
		if pc.gone == nil {
			pc.gone = pc.ClientGone // bound once per connection, not per request
		}
		return clientWatch{stop: context.AfterFunc(base, pc.gone)}
	}
	return clientWatch{}
}

// end disarms the watch; gone reports that the client went away meanwhile (the
// connection's deadline may be poisoned: it must not be reused).
func (cw clientWatch) end() (gone bool) {
	switch {
	case cw.client != nil:
		return core.UnwatchClient(cw.client, cw.pc)
	case cw.stop != nil:
		return !cw.stop()
	}
	return false
}

// exchange writes req and reads the final response. stale reports that the failure came
// before any response byte (a reused connection the upstream had closed).
func (pc *h1Conn) exchange(client *http.Request, base context.Context, req *http.Request, deadline, now time.Time, w http.ResponseWriter) (resp *http.Response, err error, stale bool) {
	pc.usedAt = now
	// Writing is bounded by the whole-request deadline and the send timeout; the
	// response-header timeout starts once the request is written (as the Transport's
	// ResponseHeaderTimeout), so a slow client body does not use it up.
	pc.setDeadline(false, pc.pool.client.writeDeadline(deadline, now), now)
	watch := watchClient(client, base, pc)
	fail := func(e error, stale bool) (*http.Response, error, bool) {
		watch.end()
		return nil, e, stale
	}
	if err := writeH1Request(pc.bw, req); err != nil {
		var werr *h1WriteError
		var ne net.Error
		timedOut := errors.As(err, &ne) && ne.Timeout()
		return fail(err, errors.As(err, &werr) && !timedOut)
	}
	sent := now
	if req.Body != nil {
		sent = time.Now()
	}
	headerBy := deadline
	if fb := pc.pool.client.firstByte; fb > 0 {
		if t := sent.Add(fb); headerBy.IsZero() || t.Before(headerBy) {
			headerBy = t
		}
	}
	pc.setDeadline(true, headerBy, sent)
	pc.lim.n = h1MaxHeaderBytes
	if _, err := pc.br.Peek(1); err != nil {
		return fail(err, isStaleRead(err))
	}
	var fast *h1Response
	for n1xx := 0; ; n1xx++ {
		resp, fast, err = pc.readResponse(req)
		if err != nil {
			if pc.lim.n <= 0 {
				err = fmt.Errorf("upstream response header over %d bytes", h1MaxHeaderBytes)
			}
			return fail(err, false)
		}
		code := resp.StatusCode
		if code >= 200 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			return fail(errH1Switch, false)
		}
		if n1xx >= h1Max1xx {
			return fail(fmt.Errorf("upstream sent more than %d informational responses", h1Max1xx), false)
		}
		if w != nil && code != http.StatusContinue {
			forward1xx(w, code, textproto.MIMEHeader(resp.Header))
		}
		pc.lim.n = h1MaxHeaderBytes
	}
	pc.lim.n = -1
	if !headerBy.Equal(deadline) {
		pc.bodyDeadline(deadline)
	}
	if resp.Body == http.NoBody {
		pc.finish(resp, watch, true)
		return resp, nil, false
	}
	if fast != nil {
		fast.body = h1Body{pc: pc, resp: resp, watch: watch, remaining: resp.ContentLength, connHeader: true}
		resp.Body = &fast.body
		return resp, nil, false
	}
	resp.Body = &h1Body{pc: pc, resp: resp, body: resp.Body, watch: watch}
	return resp, nil, false
}

// writeDeadline is when writing a request that starts now must end: the send timeout or the
// request's deadline, whichever comes first (zero: no limit).
func (c *h1Client) writeDeadline(deadline, now time.Time) time.Time {
	if c.send <= 0 {
		return deadline
	}
	if t := now.Add(c.send); deadline.IsZero() || t.Before(deadline) {
		return t
	}
	return deadline
}

// finish returns pc to the pool when the exchange ended cleanly, else closes it.
func (pc *h1Conn) finish(resp *http.Response, watch clientWatch, clean bool) {
	if watch.end() || pc.poisoned.Load() {
		clean = false // the client went away: the connection's deadline is poisoned
	}
	// Bytes after the response are an unsolicited response: the connection is unusable.
	if clean && !resp.Close && pc.br.Buffered() == 0 {
		pc.pool.put(pc)
		return
	}
	pc.close()
}

// h1Body is a response body on a pooled connection: EOF gives the connection back, an
// early Close or a read error closes it.
type h1Body struct {
	pc    *h1Conn
	resp  *http.Response
	body  io.ReadCloser // net/http's body reader; nil on the fast path (h1response.go)
	watch clientWatch
	done  bool
	// remaining is what is left of a fast-path body (Content-Length), read by readDirect.
	remaining int64
	// connHeader: resp.Header is the connection's map (h1Conn.hdr), which the next exchange
	// clears and fills: resp drops it when the body ends, so no late reader sees another
	// response's fields.
	connHeader bool
}

// end ends the body: the connection goes back to the pool (clean) or is closed.
func (b *h1Body) end(clean bool) {
	b.done = true
	if b.connHeader {
		b.resp.Header = nil
	}
	b.pc.finish(b.resp, b.watch, clean)
}

// Read implements io.Reader.
func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	var n int
	var err error
	if b.body != nil {
		n, err = b.body.Read(p)
	} else {
		n, err = b.readDirect(p)
	}
	if err != nil {
		b.end(err == io.EOF)
	}
	return n, err
}

// Close implements io.Closer.
func (b *h1Body) Close() error {
	if !b.done {
		b.end(false)
	}
	return nil
}

// headerLimitReader sits between the connection and its bufio.Reader: while n > 0 it
// counts down and fails when a response header would exceed the limit; n < 0 is unlimited.
// It sets the body's read deadline (h1Conn.bodyDeadline) before the read that needs it.
type headerLimitReader struct {
	r  net.Conn
	n  int64
	pc *h1Conn // nil in tests without a connection
}

var errHeaderLimit = errors.New("response header limit reached")

// Read implements io.Reader.
func (l *headerLimitReader) Read(p []byte) (int, error) {
	if l.n == 0 {
		return 0, errHeaderLimit
	}
	if l.n > 0 && int64(len(p)) > l.n {
		p = p[:l.n]
	}
	if pc := l.pc; pc != nil && pc.bodyWait {
		pc.setDeadline(true, pc.bodyBy, pc.usedAt)
	}
	n, err := l.r.Read(p)
	if l.n > 0 {
		l.n -= int64(n)
	}
	return n, err
}

// isStaleRead reports whether a failure to read the first response byte means the
// upstream had closed the connection (as opposed to a timeout or a cancelled request).
func isStaleRead(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) // reset by peer, broken pipe
}

// h1WriteError marks a failure to write the request to the connection.
type h1WriteError struct{ err error }

func (e *h1WriteError) Error() string { return "writing request to upstream: " + e.err.Error() }
func (e *h1WriteError) Unwrap() error { return e.err }

// reqWriteExcluded reports whether writeH1Request writes the header field k itself or
// never forwards it on a bodyless request (as net/http's request writer): Host, User-Agent,
// Content-Length, Transfer-Encoding and Trailer. A switch: no hashing per field.
func reqWriteExcluded(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// writeH1Request writes the request line, header and body (a declared length) and flushes.
// Header names and values are validated as net/http's Transport does: a value with CR or
// LF (from a template, say) must never split the request.
func writeH1Request(bw *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("invalid Host %q for the upstream request", host)
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	writeRequestURI(bw, req.URL)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		if !httpguts.ValidHeaderFieldValue(ua[0]) {
			return fmt.Errorf("invalid User-Agent value for the upstream request")
		}
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua[0])
		bw.WriteString("\r\n")
	}
	for k, vv := range req.Header {
		if reqWriteExcluded(k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid header field name %q for the upstream request", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("invalid header field value for %q in the upstream request", k)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v)) // as net/http's header writer
			bw.WriteString("\r\n")
		}
	}
	switch {
	case req.Body != nil:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n") // as net/http: these methods normally carry a body
	}
	bw.WriteString("\r\n")
	if req.Body != nil {
		src := bodySource{r: req.Body}
		if _, err := io.CopyN(bw, &src, req.ContentLength); err != nil {
			switch {
			case src.err != nil:
				return src.err // the client's body failed (a limit, a reset): not the upstream
			case err == io.EOF:
				return io.ErrUnexpectedEOF // the client sent less than it declared
			}
			return &h1WriteError{err}
		}
	}
	if err := bw.Flush(); err != nil {
		return &h1WriteError{err}
	}
	return nil
}

// writeRequestURI writes u.RequestURI() without building it: the escaped path ("/" when
// empty) and "?query" when there is one. An opaque URL takes RequestURI itself.
func writeRequestURI(bw *bufio.Writer, u *url.URL) {
	if u.Opaque != "" {
		bw.WriteString(u.RequestURI())
		return
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	bw.WriteString(p)
	if u.ForceQuery || u.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
}

// bodySource remembers a failure of the request body it reads (other than its end), to tell
// it from write errors.
type bodySource struct {
	r   io.Reader
	err error
}

// Read implements io.Reader.
func (b *bodySource) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
