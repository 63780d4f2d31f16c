package h1guard

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultMaxHeaders          = 100
	DefaultMaxRequestLineBytes = defaultReqMax
	DefaultHandshakeTimeout    = 10 * time.Second
)

// Options configure the guard. The zero value uses the defaults.
type Options struct {
	// MaxHeaderBytes bounds a header (and a trailer) section, request line excluded;
	// larger sections are refused with 431. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of header (and trailer) fields; more are refused with
	// 431. Zero means DefaultMaxHeaders.
	MaxHeaders int
	// MaxRequestLineBytes bounds the request line, CRLF included; longer lines are refused
	// with 414. Zero means DefaultMaxRequestLineBytes (8 KiB).
	MaxRequestLineBytes int
	// HandshakeTimeout bounds the TLS handshake the guard runs for connections accepted
	// from a TLS listener. Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WriteTimeout, when positive, bounds how long a write may wait for the client to accept
	// bytes (nginx's send_timeout): a write that makes no progress for that long fails with
	// os.ErrDeadlineExceeded, and net/http closes the connection. Large writes are sent in
	// chunks of 64 KiB with the deadline moved between chunks, at most once per second (or a
	// quarter of a shorter timeout). Whoever sets a non-zero write deadline on the connection
	// (http.ResponseController.SetWriteDeadline, an HTTP/2 server) owns the write deadline
	// until a zero deadline is set. Zero means no limit.
	WriteTimeout time.Duration
	// OnReject, when set, is called once for every refused connection (for logs and
	// metrics). It runs on the connection's reading goroutine and must not block.
	OnReject func(remote net.Addr, err *Error)
}

func (o Options) withDefaults() Options {
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxHeaders <= 0 {
		o.MaxHeaders = DefaultMaxHeaders
	}
	if o.MaxRequestLineBytes <= 0 {
		o.MaxRequestLineBytes = DefaultMaxRequestLineBytes
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return o
}

// Error describes a framing violation. Read on a guarded connection returns it wrapped in a
// *net.OpError (Op "read"), which net/http treats as a plain read failure: it closes the
// connection without writing a response of its own.
type Error struct {
	// Status is the HTTP status the guard answered (or would have answered) with.
	Status int
	// Reason is a short, fixed description of the violation.
	Reason string
}

// Error implements error.
func (e *Error) Error() string {
	return "h1guard: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// Wrap returns a listener whose connections are validated by the guard. ln may be a plain
// TCP listener or the result of tls.NewListener (preferred for TLS ports: the guard must
// see plaintext). For a TLS listener the guard completes the handshake before Accept
// returns the connection; connections that negotiated "h2" (or failed the handshake) are
// returned as the *tls.Conn itself so that net/http serves HTTP/2 (or reports the handshake
// error) as usual, all others are guarded and still expose ConnectionState.
func Wrap(ln net.Listener, opts Options) net.Listener {
	return &listener{
		inner:    ln,
		opts:     opts.withDefaults(),
		ready:    make(chan net.Conn),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
}

type listener struct {
	inner net.Listener
	opts  Options

	start     sync.Once
	ready     chan net.Conn
	tempErr   chan error
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	finished  chan struct{} // closed when the accept loop stopped; finalErr is set
	finalErr  error
}

// Accept returns the next connection, wrapped.
func (l *listener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		l.tempErr = make(chan error)
		go l.acceptLoop()
	})
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.tempErr:
		return nil, err
	case <-l.finished:
		return nil, l.finalErr
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				select {
				case l.tempErr <- err:
					continue
				case <-l.done:
				}
			}
			l.finalErr = err
			close(l.finished)
			return
		}
		if tc, ok := c.(*tls.Conn); ok {
			go l.handshake(tc)
			continue
		}
		l.deliver(newConn(c, &l.opts))
	}
}

func (l *listener) handshake(tc *tls.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil || tc.ConnectionState().NegotiatedProtocol == "h2" {
		// net/http repeats the (finished) handshake, reports its error or serves HTTP/2.
		l.deliver(tc)
		return
	}
	l.deliver(&tlsConn{newConn(tc, &l.opts)})
}

func (l *listener) deliver(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// Close closes the inner listener; connections not yet returned by Accept are closed.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.inner.Close()
}

// Addr returns the inner listener's address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// Write state bits.
const (
	wWrote   = 1 // the server wrote something on this connection
	wBlocked = 2 // the guard answered; server writes are dropped
)

var errBlocked = errors.New("h1guard: connection refused by the framing guard")

// conn is a guarded connection.
type conn struct {
	net.Conn
	opts *Options

	pass   atomic.Bool
	wstate atomic.Uint32

	// Reading side; used by one reader at a time (net/http's contract).
	p        parser
	deferred bool  // a violation is waiting to be reported
	err      error // sticky error once reported

	onReadError func(error) // set once before the connection is served; see OnReadError

	// Writing side (Options.WriteTimeout).
	wdl   atomic.Int64 // the write deadline the guard set, in Unix nanoseconds; 0: none
	wuser atomic.Bool  // someone else set a write deadline: the guard leaves them alone
}

// writeChunk is the largest piece a guarded write sends under one write deadline.
const writeChunk = 64 << 10

// maxWriteSlack bounds how late a write deadline may fire (see Options.WriteTimeout).
const maxWriteSlack = time.Second

// OnReadError registers fn to be called with every error the client connection's reads
// return (end of stream, reset, deadlines), in the reading goroutine. Call it before the
// connection is served (http.Server.ConnContext); it is how a handler learns, without a
// goroutine, that an HTTP/1 client went away while net/http's background read waits.
func (c *conn) OnReadError(fn func(error)) { c.onReadError = fn }

// tlsConn is a guarded connection over TLS. ConnectionState lets net/http fill
// Request.TLS.
type tlsConn struct{ *conn }

// ConnectionState returns the TLS state of the underlying *tls.Conn.
func (c *tlsConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}

func newConn(c net.Conn, o *Options) *conn {
	g := &conn{Conn: c, opts: o}
	g.p.init(o)
	return g
}

// NetConn returns the underlying connection (bypassing the guard).
func (c *conn) NetConn() net.Conn { return c.Conn }

// Read reads and validates the next bytes.
func (c *conn) Read(b []byte) (int, error) {
	if c.pass.Load() {
		n, err := c.Conn.Read(b)
		if err != nil && c.onReadError != nil {
			c.onReadError(err)
		}
		return n, err
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.deferred {
		return c.report(len(b))
	}
	n, err := c.Conn.Read(b)
	if err != nil && c.onReadError != nil {
		c.onReadError(err)
	}
	if n <= 0 {
		return n, err
	}
	k, v := c.p.feed(b[:n])
	switch v {
	case vPass:
		c.pass.Store(true)
	case vBad:
		c.deferred = true
		if k > 0 {
			return k, nil
		}
		return c.report(len(b))
	}
	return n, err
}

// report answers a pending violation (if that is safe) and fails the read.
func (c *conn) report(plen int) (int, error) {
	p := &c.p
	body := p.inBody()
	if p.reqs > 0 && plen == 1 {
		// net/http's background read (one byte, straight from the connection) while the
		// previous response may still be in flight: end it empty, so the previous request's
		// answer is still written; the foreground read of the next request reports the
		// violation. This holds whether the violation is in the next request's head or in
		// its body (pipelined requests already buffered): blocking writes here dropped the
		// previous request's answer.
		return 0, nil
	}
	gerr := &Error{Status: p.status, Reason: p.reason}
	// From now on the server's writes are dropped: net/http may try to answer a partial
	// head with its own 400, and a handler must not write after the guard's answer.
	var prev uint32
	for {
		prev = c.wstate.Load()
		if c.wstate.CompareAndSwap(prev, prev|wBlocked) {
			break
		}
	}
	var respond bool
	switch {
	case body:
		// The current request's handler is running: answer only if nothing was written
		// on this connection yet (first request, no 100 Continue).
		respond = p.heads == 1 && prev == 0
	case p.afterUpgrade:
		// Possibly inside a hijacked stream: just close.
	default:
		// Head of a new request. net/http reads the next request only after the previous
		// response was flushed, so nothing is pending.
		respond = true
	}
	if respond {
		c.writeRejection(gerr)
	}
	if c.opts.OnReject != nil {
		c.opts.OnReject(c.Conn.RemoteAddr(), gerr)
	}
	c.err = &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: gerr}
	return 0, c.err
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 414:
		return "URI Too Long"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	}
	return "Error"
}

func (c *conn) writeRejection(e *Error) {
	body := e.Reason + "\n"
	msg := "HTTP/1.1 " + strconv.Itoa(e.Status) + " " + statusText(e.Status) +
		"\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.Conn, msg); err != nil {
		return
	}
	// Half-close and drain briefly so that unread request bytes do not turn the close
	// into a reset that destroys the response before the client reads it.
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			_ = c.Conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, _ = io.CopyN(io.Discard, c.Conn, 256<<10)
		}
	}
}

// noteWrite records a server write; false means the guard already answered.
func (c *conn) noteWrite() bool {
	for {
		s := c.wstate.Load()
		if s&wBlocked != 0 {
			return false
		}
		if s&wWrote != 0 || c.wstate.CompareAndSwap(s, s|wWrote) {
			return true
		}
	}
}

// Write writes to the connection unless the guard already answered on it.
func (c *conn) Write(b []byte) (int, error) {
	if !c.noteWrite() {
		return 0, errBlocked
	}
	if !c.writeTimed() {
		return c.Conn.Write(b)
	}
	var n int
	for len(b) > 0 {
		k := min(len(b), writeChunk)
		c.armWrite()
		m, err := c.Conn.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// ReadFrom keeps the underlying connection's ReadFrom (sendfile) available; under a write
// timeout it sends at most 64 KiB per call so that the deadline follows progress.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if !c.noteWrite() {
		return 0, errBlocked
	}
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	if !c.writeTimed() {
		return rf.ReadFrom(r)
	}
	// One level of *io.LimitedReader is unwrapped so that the chunks still reach sendfile.
	src, remain := r, int64(-1)
	outer, limited := r.(*io.LimitedReader)
	if limited {
		src, remain = outer.R, outer.N
	}
	chunk := &io.LimitedReader{R: src}
	var total int64
	for remain != 0 {
		chunk.N = writeChunk
		if remain > 0 && remain < writeChunk {
			chunk.N = remain
		}
		want := chunk.N
		c.armWrite()
		m, err := rf.ReadFrom(chunk)
		total += m
		if limited {
			outer.N -= m
			remain -= m
		}
		if err != nil || m < want {
			return total, err
		}
	}
	return total, nil
}

// writeTimed reports whether the guard enforces Options.WriteTimeout on this connection.
func (c *conn) writeTimed() bool {
	return c.opts.WriteTimeout > 0 && !c.wuser.Load()
}

// armWrite makes sure the write deadline is at least WriteTimeout away, moving it (with
// some slack, so that a busy connection moves it rarely) only when it is not.
func (c *conn) armWrite() {
	now := time.Now()
	need := now.Add(c.opts.WriteTimeout)
	if cur := c.wdl.Load(); cur != 0 && cur >= need.UnixNano() {
		return
	}
	slack := min(maxWriteSlack, c.opts.WriteTimeout/4)
	d := need.Add(slack)
	c.wdl.Store(d.UnixNano())
	_ = c.Conn.SetWriteDeadline(d)
}

// SetWriteDeadline sets the connection's write deadline. A non-zero deadline takes the
// write deadline over from the guard (Options.WriteTimeout) until a zero one (net/http sets
// one after every response and on hijack) hands it back.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.noteWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines; see SetWriteDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	c.noteWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

// noteWriteDeadline records who owns the write deadline after it is set to t.
func (c *conn) noteWriteDeadline(t time.Time) {
	c.wuser.Store(!t.IsZero())
	c.wdl.Store(0)
}

// CloseWrite half-closes the underlying connection when it supports that.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Passthrough switches a guarded connection to pass-through: no more validation. Call it
// on a hijacked connection after answering 101 Switching Protocols (or otherwise taking
// the connection over) when the new protocol's first client bytes could look like HTTP.
// It unwraps connections that expose NetConn. It reports whether c was a guarded
// connection.
func Passthrough(c net.Conn) bool {
	for c != nil {
		switch g := c.(type) {
		case *conn:
			g.pass.Store(true)
			return true
		case *tlsConn:
			g.pass.Store(true)
			return true
		case interface{ NetConn() net.Conn }:
			c = g.NetConn()
		default:
			return false
		}
	}
	return false
}
