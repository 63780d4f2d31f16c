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
}

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
	if !body && p.reqs > 0 && plen == 1 {
		// net/http's background read while the previous response may still be in flight:
		// end it empty; the foreground read of the next request reports the violation.
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
	return c.Conn.Write(b)
}

// ReadFrom keeps the underlying connection's ReadFrom (sendfile) available.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if !c.noteWrite() {
		return 0, errBlocked
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
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
