package h2serve

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Preface is the HTTP/2 client connection preface (RFC 9113, section 3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// ReadBufferSize is the read buffer of a connection that sent the HTTP/2 preface: large
// enough for the request HEADERS frames a client sends in one go, small beside what
// net/http's HTTP/2 server holds per connection.
const ReadBufferSize = 4 << 10

// WrapListener returns ln with connections that, once the HTTP/2 connection preface has been
// read from them, buffer their reads and hold a response's HEADERS frame back to join it with
// the next write (see the package documentation).
func WrapListener(ln net.Listener) net.Listener { return &listener{Listener: ln, hold: HoldDelay} }

type listener struct {
	net.Listener
	// hold is how long its connections hold a write back (0: never).
	hold time.Duration
}

// Accept implements net.Listener.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, hold: l.hold}, nil
}

// sniffOff marks a connection whose first bytes were not the preface.
const sniffOff = -1

// conn is a connection of a WrapListener. Reads come from one goroutine at a time (net/http's
// HTTP/1 connection goroutine, then its HTTP/2 frame reader), so its read state has no lock.
// Once the preface has been read (h2), writes go through wr (write.go).
type conn struct {
	net.Conn
	h2 atomic.Bool
	wr writer
	// hold is the listener's: how long a write may be held back.
	hold time.Duration
	// seen counts the preface bytes read so far (sniffOff: not HTTP/2).
	seen int
	// buf is the read buffer, set once the preface has passed; buf[r:w] is unread.
	buf  []byte
	r, w int
	// err is a read error that came with data still buffered, returned after it.
	err error
}

// Read implements net.Conn.
func (c *conn) Read(p []byte) (int, error) {
	if c.buf == nil {
		n, err := c.Conn.Read(p)
		if c.seen != sniffOff && n > 0 {
			c.sniff(p[:n])
		}
		return n, err
	}
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	if c.err != nil {
		err := c.err
		c.err = nil
		return 0, err
	}
	if len(p) >= len(c.buf) {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(c.buf)
	if n <= 0 {
		return 0, err
	}
	k := copy(p, c.buf[:n])
	c.r, c.w = k, n
	if k < n {
		c.err = err
		return k, nil
	}
	return k, err
}

// sniff matches b, the next bytes read, against the preface; the whole preface switches
// the connection to buffered reads. Bytes after the preface in b are the caller's already.
func (c *conn) sniff(b []byte) {
	for _, x := range b {
		if x != Preface[c.seen] {
			c.seen = sniffOff
			return
		}
		c.seen++
		if c.seen == len(Preface) {
			c.seen = sniffOff
			c.buf = make([]byte, ReadBufferSize)
			c.h2.Store(true)
			return
		}
	}
}

// Write implements net.Conn: on an HTTP/2 connection it may hold p back (write.go).
func (c *conn) Write(p []byte) (int, error) {
	if !c.h2.Load() {
		return c.Conn.Write(p)
	}
	return c.write(p)
}

// Close implements net.Conn: on an HTTP/2 connection it writes held bytes first.
func (c *conn) Close() error {
	if c.h2.Load() {
		c.closeWrites()
	}
	return c.Conn.Close()
}

// Buffered reports how many bytes were read from the connection and not yet returned.
func (c *conn) Buffered() int { return c.w - c.r }

// NetConn returns the wrapped connection.
func (c *conn) NetConn() net.Conn { return c.Conn }

// OnReadError passes fn to the wrapped connection when it reports read errors (the framing
// guard does, for core.WithConnInfo).
func (c *conn) OnReadError(fn func(error)) {
	if rc, ok := c.Conn.(interface{ OnReadError(func(error)) }); ok {
		rc.OnReadError(fn)
	}
}

// ReadFrom keeps the wrapped connection's ReadFrom (sendfile for HTTP/1 responses). On an
// HTTP/2 connection it goes through Write, behind any held bytes.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if c.h2.Load() {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the wrapped connection when it can (net/http does before closing
// an HTTP/1 connection).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
