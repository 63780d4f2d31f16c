// Package evloop is the goloop floor row of conduit-bench: a minimal HTTP/1.1 reverse proxy
// on epoll event loops (golang.org/x/sys/unix), with the upstream connections on the same
// loops. Each loop owns a listening socket (SO_REUSEPORT, so the kernel spreads accepted
// connections over the loops), its client connections, and a keep-alive pool of upstream
// connections; a loop runs on one locked OS thread and never blocks except in epoll_wait.
//
// It supports what the benchmark and its tests send: HTTP/1.1 requests with or without a
// Content-Length body (keep-alive, pipelined), answered with Content-Length, chunked (relayed
// as it is, trailers included), bodyless (HEAD, 1xx, 204, 304) or read-until-close bodies.
// It refuses HTTP/1.0 (505), request Transfer-Encoding (501) and malformed heads (400), has no
// timeouts and no TLS. It measures what an event-loop engine costs; it is not a proxy to use.
package evloop

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	highWater = 1 << 20 // pending output at which the loop stops reading the other side
	maxIdle   = 128     // idle upstream connections kept per loop
	readSize  = 64 << 10
)

// Server is a set of event loops serving one address.
type Server struct {
	loops []*loop
	addr  string
	mu    sync.Mutex // guards closed, done and the loops' wake fds
	// closed: Close was called; done: Serve returned and closed the wake fds.
	closed, done bool
}

// Listen binds n listening sockets (n ≥ 1) to addr with SO_REUSEPORT and prepares one loop
// per socket proxying to upstream (host:port). With port 0 the first socket picks the port.
func Listen(addr, upstream string, n int) (*Server, error) {
	la, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("evloop: listen address: %w", err)
	}
	ua, err := net.ResolveTCPAddr("tcp", upstream)
	if err != nil {
		return nil, fmt.Errorf("evloop: upstream address: %w", err)
	}
	upFam, upSA := sockaddr(ua)
	s := &Server{}
	for i := 0; i < max(n, 1); i++ {
		fam, sa := sockaddr(la)
		lnfd, bound, err := listenSocket(fam, sa)
		if err != nil {
			_ = s.closeAll()
			return nil, err
		}
		la.Port = bound
		l, err := newLoop(lnfd, upFam, upSA)
		if err != nil {
			_ = unix.Close(lnfd)
			_ = s.closeAll()
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	s.addr = la.String()
	return s, nil
}

// Addr is the address the loops listen on.
func (s *Server) Addr() string { return s.addr }

// Serve runs the loops until Close; it returns the first loop error, or nil after Close.
func (s *Server) Serve() error {
	errs := make([]error, len(s.loops))
	var wg sync.WaitGroup
	for i, l := range s.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.run()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	s.done = true
	for _, l := range s.loops {
		_ = unix.Close(l.wakefd)
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Close tells every loop to stop; each closes its sockets before Serve returns.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.done {
		return nil
	}
	s.closed = true
	var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}
	var errs []error
	for _, l := range s.loops {
		if _, err := unix.Write(l.wakefd, one); err != nil {
			errs = append(errs, fmt.Errorf("evloop: wake loop: %w", err))
		}
	}
	return errors.Join(errs...)
}

// closeAll releases loops that never ran (a failed Listen).
func (s *Server) closeAll() error {
	for _, l := range s.loops {
		l.shutdown()
		_ = unix.Close(l.wakefd)
	}
	return nil
}

func sockaddr(a *net.TCPAddr) (int, unix.Sockaddr) {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return unix.AF_INET6, sa
}

// listenSocket makes a non-blocking listening socket with SO_REUSEPORT and returns it with
// the port it is bound to.
func listenSocket(fam int, sa unix.Sockaddr) (int, int, error) {
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("evloop: socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			_ = unix.Close(fd)
			return -1, 0, fmt.Errorf("evloop: setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, 0, fmt.Errorf("evloop: bind: %w", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		_ = unix.Close(fd)
		return -1, 0, fmt.Errorf("evloop: listen: %w", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return -1, 0, fmt.Errorf("evloop: getsockname: %w", err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return fd, a.Port, nil
	case *unix.SockaddrInet6:
		return fd, a.Port, nil
	}
	_ = unix.Close(fd)
	return -1, 0, errors.New("evloop: unexpected socket address family")
}

// respState is where an upstream connection is in reading a response.
type respState uint8

const (
	rsHead respState = iota
	rsLength
	rsChunked
	rsUntilClose
)

// conn is a client or an upstream connection of one loop.
type conn struct {
	fd       int
	upstream bool
	closed   bool
	events   uint32 // interest registered with epoll
	dirty    bool   // in loop.dirty: interest to be recomputed
	in, out  []byte
	peer     *conn // the other side of the exchange in progress

	// client side
	busy       bool   // a request is in progress
	closeAfter bool   // close once the current response is written
	isHead     bool   // the request in progress is HEAD
	bodyLeft   int64  // request body bytes still to forward
	bodyTotal  int64  // the request's Content-Length
	reqHead    []byte // the request head sent upstream (resent once on a stale pooled connection)
	answered   bool   // bytes of the current response reached c.out
	rdEOF      bool   // the client shut down its sending side

	// upstream side
	connecting bool
	reused     bool // served a request before this one
	gotBytes   bool // bytes of the current response arrived
	reusable   bool
	rs         respState
	left       int64
	chunk      chunkScanner
}

// loop is one event loop: an epoll instance, a listening socket and its connections.
type loop struct {
	epfd, wakefd, lnfd int
	upFam              int
	upSA               unix.Sockaddr
	conns              []*conn // by fd
	idle               []*conn // idle upstream connections, most recent last
	dirty              []*conn
	buf                []byte
}

func newLoop(lnfd, upFam int, upSA unix.Sockaddr) (*loop, error) {
	l := &loop{lnfd: lnfd, upFam: upFam, upSA: upSA, wakefd: -1, buf: make([]byte, readSize)}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("evloop: epoll_create1: %w", err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		_ = unix.Close(l.epfd)
		return nil, fmt.Errorf("evloop: eventfd: %w", err)
	}
	for _, fd := range []int{lnfd, l.wakefd} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			_ = unix.Close(l.epfd)
			_ = unix.Close(l.wakefd)
			return nil, fmt.Errorf("evloop: epoll_ctl: %w", err)
		}
	}
	return l, nil
}

// run is the loop: wait for events, handle them, recompute the interest of what changed.
// It blocks in epoll_wait whenever it has handled a batch (one system call per batch; a
// non-blocking poll first, as gnet does, cost one more epoll_wait per wake-up here).
func (l *loop) run() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.shutdown()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("evloop: epoll_wait: %w", err)
		}
		for i := 0; i < n; i++ {
			fd, ev := int(events[i].Fd), events[i].Events
			switch {
			case fd == l.wakefd:
				return nil
			case fd == l.lnfd:
				l.accept()
			case fd < len(l.conns) && l.conns[fd] != nil:
				l.handle(l.conns[fd], ev)
			}
			l.syncDirty()
		}
	}
}

// shutdown closes every socket of the loop but its wake fd (Serve closes that).
func (l *loop) shutdown() {
	for _, c := range l.conns {
		if c != nil {
			_ = unix.Close(c.fd)
		}
	}
	l.conns, l.idle = nil, nil
	for _, fd := range []int{l.lnfd, l.epfd} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	l.lnfd, l.epfd = -1, -1
}

// register adds c to the loop and to epoll.
func (l *loop) register(c *conn) error {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, len(l.conns)+64)...)
	}
	c.events = c.want()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: c.events, Fd: int32(c.fd)}); err != nil {
		return fmt.Errorf("evloop: epoll_ctl add: %w", err)
	}
	l.conns[c.fd] = c
	return nil
}

// accept takes up to 64 pending connections from the listening socket.
func (l *loop) accept() {
	for range 64 {
		fd, _, err := unix.Accept4(l.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			return // EAGAIN, or EMFILE and the like: the listener stays readable, retried later
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if err := l.register(&conn{fd: fd}); err != nil {
			_ = unix.Close(fd)
		}
	}
}

// want is the epoll interest c needs now (level-triggered).
func (c *conn) want() uint32 {
	var ev uint32
	if len(c.out) > 0 || c.connecting {
		ev |= unix.EPOLLOUT
	}
	switch {
	case c.upstream:
		if !c.connecting && (c.peer == nil || len(c.peer.out) < highWater) {
			ev |= unix.EPOLLIN // idle: to notice the upstream closing it
		}
	case c.rdEOF || (c.closeAfter && !c.busy):
	case c.bodyLeft > 0 && (c.peer == nil || len(c.peer.out) >= highWater):
		// the upstream is not taking the body as fast as it comes
	case c.busy && len(c.in) >= maxHead:
		// enough pipelined bytes buffered behind the request in progress
	default:
		// Also while a bodyless request is in progress: pipelined bytes are buffered, and
		// the interest does not change twice per request (two epoll_ctl calls).
		ev |= unix.EPOLLIN
	}
	return ev
}

// touch marks c (and its peer) for an interest update after the current event.
func (l *loop) touch(c *conn) {
	for _, x := range []*conn{c, c.peer} {
		if x != nil && !x.dirty {
			x.dirty = true
			l.dirty = append(l.dirty, x)
		}
	}
}

func (l *loop) syncDirty() {
	for _, c := range l.dirty {
		c.dirty = false
		if c.closed {
			continue
		}
		if w := c.want(); w != c.events {
			c.events = w
			if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: w, Fd: int32(c.fd)}); err != nil {
				l.closeConn(c)
			}
		}
	}
	l.dirty = l.dirty[:0]
}

// handle dispatches one epoll event of c.
func (l *loop) handle(c *conn, ev uint32) {
	l.touch(c)
	if c.upstream && c.connecting {
		l.finishConnect(c)
		return
	}
	if !c.upstream && ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		// The client closed both directions (or failed): nothing more can reach it. (Its
		// half-close alone is only an EOF on read; see readClient.)
		l.abort(c)
		return
	}
	if ev&unix.EPOLLOUT != 0 {
		l.flush(c)
	}
	if !c.closed && ev&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		if c.upstream {
			l.readUpstream(c)
		} else {
			l.readClient(c)
		}
	}
}

// read reads once into c.in; ok is false on EOF or an error other than EAGAIN/EINTR, and
// eof tells the two apart.
func (l *loop) read(c *conn) (got, ok, eof bool) {
	n, err := unix.Read(c.fd, l.buf)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return false, true, false
	case err != nil || n == 0:
		return false, false, err == nil
	}
	c.in = append(c.in, l.buf[:n]...)
	return true, true, false
}

// flush writes c.out until it is empty or the socket is full; a client whose last
// response is written is closed when closeAfter is set.
func (l *loop) flush(c *conn) {
	l.touch(c)
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			if c.upstream && c.peer != nil {
				l.upstreamEOF(c) // a pooled connection the upstream closed: retried once
			} else {
				l.abort(c)
			}
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	if !c.upstream && len(c.out) == 0 && c.closeAfter && !c.busy {
		l.closeConn(c)
	}
}

// closeConn closes c's socket and forgets it; an idle upstream leaves the pool.
func (l *loop) closeConn(c *conn) {
	if c.closed {
		return
	}
	c.closed = true
	_ = unix.Close(c.fd)
	l.conns[c.fd] = nil
	for i, u := range l.idle {
		if u == c {
			l.idle = append(l.idle[:i], l.idle[i+1:]...)
			break
		}
	}
}

// abort closes c and the other side of its exchange (neither can continue).
func (l *loop) abort(c *conn) {
	p := c.peer
	if p != nil {
		p.peer, c.peer = nil, nil
		l.closeConn(p)
	}
	l.closeConn(c)
}

// readClient reads a client's bytes and starts or continues its request.
func (l *loop) readClient(c *conn) {
	got, ok, eof := l.read(c)
	if eof && c.busy && c.bodyLeft == 0 {
		// The client shut down its sending side after a whole request: answer it, then close.
		c.closeAfter, c.rdEOF = true, true
		return
	}
	if !ok {
		l.abort(c)
		return
	}
	if got {
		l.process(c)
	}
}

// process continues the client's request body, or starts its next request.
func (l *loop) process(c *conn) {
	if c.busy {
		l.forwardBody(c)
		return
	}
	if c.closeAfter || len(c.in) == 0 {
		return
	}
	end := indexHeadEnd(c.in)
	if end > maxHead || (end < 0 && len(c.in) > maxHead) {
		l.refuse(c, 431)
		return
	}
	if end < 0 {
		return
	}
	head, info, err := rewriteRequest(c.reqHead[:0], c.in[:end])
	c.reqHead = head
	var se statusError
	if errors.As(err, &se) {
		l.refuse(c, int(se))
		return
	}
	c.in = c.in[:copy(c.in, c.in[end:])]
	c.busy, c.answered, c.isHead = true, false, info.head
	c.bodyLeft, c.bodyTotal, c.closeAfter = info.contentLength, info.contentLength, info.close
	if err := l.sendUpstream(c, true); err != nil {
		l.refuse(c, 502)
		return
	}
	l.forwardBody(c)
}

// indexHeadEnd is the length of the head at the start of p (through CRLF CRLF), or -1.
func indexHeadEnd(p []byte) int {
	if i := bytes.Index(p, crlfcrlf); i >= 0 {
		return i + 4
	}
	return -1
}

// refuse answers the client with status and closes it after the answer.
func (l *loop) refuse(c *conn, status int) {
	if p := c.peer; p != nil {
		p.peer, c.peer = nil, nil
		l.closeConn(p)
	}
	c.busy, c.closeAfter, c.in = false, true, c.in[:0]
	c.out = errorResponse(c.out, status)
	l.flush(c)
}

// sendUpstream pairs c with an upstream connection (pooled when allowed, else a new one
// connecting without blocking) and queues the request head on it.
func (l *loop) sendUpstream(c *conn, pooled bool) error {
	var u *conn
	if n := len(l.idle); pooled && n > 0 {
		u = l.idle[n-1]
		l.idle = l.idle[:n-1]
		u.reused = true
	} else {
		var err error
		if u, err = l.dial(); err != nil {
			return err
		}
	}
	u.peer, c.peer = c, u
	u.rs, u.gotBytes, u.in, u.chunk = rsHead, false, u.in[:0], chunkScanner{}
	u.out = append(u.out[:0], c.reqHead...)
	if !u.connecting {
		l.flush(u)
	}
	l.touch(u)
	return nil
}

// dial starts a non-blocking connect to the upstream.
func (l *loop) dial() (*conn, error) {
	fd, err := unix.Socket(l.upFam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("evloop: upstream socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, l.upSA)
	inProgress := errors.Is(err, unix.EINPROGRESS)
	if err != nil && !inProgress {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("evloop: connect upstream: %w", err)
	}
	u := &conn{fd: fd, upstream: true, connecting: inProgress}
	if err := l.register(u); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return u, nil
}

// finishConnect completes a non-blocking connect: the request goes out, or the client gets
// a 502.
func (l *loop) finishConnect(u *conn) {
	soerr, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || soerr != 0 {
		l.upstreamFailed(u)
		return
	}
	u.connecting = false
	l.flush(u)
}

// forwardBody moves request body bytes from the client to its upstream.
func (l *loop) forwardBody(c *conn) {
	u := c.peer
	if c.bodyLeft == 0 || u == nil || len(c.in) == 0 {
		return
	}
	n := int(min(int64(len(c.in)), c.bodyLeft))
	u.out = append(u.out, c.in[:n]...)
	c.in = c.in[:copy(c.in, c.in[n:])]
	c.bodyLeft -= int64(n)
	if !u.connecting {
		l.flush(u)
	}
}

// readUpstream reads an upstream's bytes and relays the response they continue.
func (l *loop) readUpstream(u *conn) {
	got, ok, _ := l.read(u)
	if u.peer == nil { // idle: data or EOF on a pooled connection ends it
		if got || !ok {
			l.closeConn(u)
		}
		return
	}
	if !ok {
		l.upstreamEOF(u)
		return
	}
	if got {
		u.gotBytes = true
		l.relay(u)
	}
}

// relay parses the response in u.in and appends what goes to the client to its c.out.
func (l *loop) relay(u *conn) {
	c := u.peer
	for len(u.in) > 0 {
		switch u.rs {
		case rsHead:
			end := indexHeadEnd(u.in)
			if end > maxHead || (end < 0 && len(u.in) > maxHead) {
				l.upstreamFailed(u)
				return
			}
			if end < 0 {
				return
			}
			out, info, err := rewriteResponse(c.out, u.in[:end], c.isHead, c.closeAfter)
			if err != nil {
				l.upstreamFailed(u)
				return
			}
			c.out, c.answered = out, true
			u.in = u.in[:copy(u.in, u.in[end:])]
			if info.interim {
				continue
			}
			u.reusable = info.reusable
			switch info.frame {
			case frameNone:
				l.finish(u)
				return
			case frameLength:
				u.rs, u.left = rsLength, info.contentLength
				if u.left == 0 {
					l.finish(u)
					return
				}
			case frameChunked:
				u.rs = rsChunked
			case frameUntilClose:
				u.rs, c.closeAfter = rsUntilClose, true
			}
		case rsLength:
			n := int(min(int64(len(u.in)), u.left))
			c.out = append(c.out, u.in[:n]...)
			u.in = u.in[:copy(u.in, u.in[n:])]
			if u.left -= int64(n); u.left == 0 {
				l.finish(u)
				return
			}
		case rsChunked:
			n, done, err := u.chunk.scan(u.in)
			c.out = append(c.out, u.in[:n]...)
			u.in = u.in[:copy(u.in, u.in[n:])]
			if err != nil {
				l.flush(c)
				l.abort(u)
				return
			}
			if done {
				l.finish(u)
				return
			}
		case rsUntilClose:
			c.out = append(c.out, u.in...)
			u.in = u.in[:0]
		}
	}
	l.flush(c)
}

// finish ends an exchange whose response is complete: the upstream goes back to the pool
// (or is closed), the client's answer is flushed and its next pipelined request starts.
func (l *loop) finish(u *conn) {
	c := u.peer
	u.peer, c.peer = nil, nil
	c.busy = false
	if c.bodyLeft > 0 { // answered before the whole body arrived: the connection cannot go on
		c.closeAfter, u.reusable = true, false
	}
	if u.reusable && len(u.in) == 0 && len(u.out) == 0 && len(l.idle) < maxIdle {
		l.idle = append(l.idle, u)
	} else {
		l.closeConn(u)
	}
	l.touch(c)
	l.flush(c)
	if !c.closed {
		l.process(c)
	}
}

// upstreamEOF handles an upstream that closed (or failed) during an exchange.
func (l *loop) upstreamEOF(u *conn) {
	c := u.peer
	switch {
	case u.rs == rsUntilClose:
		u.reusable = false
		l.finish(u)
	case !u.gotBytes && u.reused && c.bodyTotal == 0:
		// A pooled connection the upstream had closed: send the bodyless request once more
		// on a new connection.
		u.peer, c.peer = nil, nil
		l.closeConn(u)
		if err := l.sendUpstream(c, false); err != nil {
			l.refuse(c, 502)
		}
	default:
		l.upstreamFailed(u)
	}
}

// upstreamFailed ends an exchange the upstream cannot complete: a 502 if the client got
// nothing of the response yet, else the client connection is cut.
func (l *loop) upstreamFailed(u *conn) {
	c := u.peer
	u.peer, c.peer = nil, nil
	l.closeConn(u)
	if c.answered {
		l.closeConn(c)
		return
	}
	l.refuse(c, 502)
}
