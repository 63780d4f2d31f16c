//go:build linux

package h1engine

import (
	"net"
	"sync"
	"syscall"
	"unsafe"
)

// watcher learns that clients went away without reading their connections: every served
// socket is registered (edge-triggered) for EPOLLRDHUP, EPOLLHUP and EPOLLERR on one epoll
// instance per server, read by one goroutine. A request costs no system call; a connection
// costs two epoll_ctl calls. The epoll data carries the descriptor and a registration
// number, so an event that raced with a close and a reuse of the descriptor is ignored.
type watcher struct {
	epfd   int
	wake   [2]int // a pipe whose read end is in the epoll set: stopWatch writes to end the loop
	mu     sync.Mutex
	seq    uint32
	fds    map[int32]*conn
	closed bool
}

func newWatcher() *watcher {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	w := &watcher{epfd: fd, fds: map[int32]*conn{}}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(fd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(w.wake[0]), Pad: -1}
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		_ = syscall.Close(fd)
		_ = syscall.Close(w.wake[0])
		_ = syscall.Close(w.wake[1])
		return nil
	}
	go w.loop()
	return w
}

const (
	epollRDHUP = 0x2000
	epollET    = 1 << 31
)

func (w *watcher) loop() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if ev.Pad == -1 && ev.Fd == int32(w.wake[0]) {
				// stopWatch: close what the loop owns and end.
				_ = syscall.Close(w.epfd)
				_ = syscall.Close(w.wake[0])
				return
			}
			fd, seq := ev.Fd, uint32(ev.Pad)
			w.mu.Lock()
			c := w.fds[fd]
			if c != nil && c.wseq != seq {
				c = nil
			}
			w.mu.Unlock()
			if c == nil {
				continue
			}
			if ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				c.clientGone(net.ErrClosed)
				continue
			}
			c.mu.Lock()
			c.finSeen = true
			c.mu.Unlock()
			c.checkFin()
		}
	}
}

// socketFD returns the descriptor under a guarded (possibly TLS) connection.
func socketFD(nc net.Conn) (int, bool) {
	for i := 0; i < 4 && nc != nil; i++ {
		if sc, ok := nc.(syscall.Conn); ok {
			raw, err := sc.SyscallConn()
			if err != nil {
				return -1, false
			}
			fd := -1
			if raw.Control(func(f uintptr) { fd = int(f) }) != nil {
				return -1, false
			}
			return fd, fd >= 0
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return -1, false
		}
		nc = u.NetConn()
	}
	return -1, false
}

func (s *Server) watchConn(c *conn) {
	s.watchOnce.Do(func() { s.watch = newWatcher() })
	w := s.watch
	if w == nil {
		return
	}
	fd, ok := socketFD(c.rwc)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.seq++
	c.wseq = w.seq
	ev := syscall.EpollEvent{Events: epollRDHUP | epollET, Fd: int32(fd), Pad: int32(c.wseq)}
	if syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
		return
	}
	c.wfd = fd
	w.fds[int32(fd)] = c
}

// unwatchConn deregisters c; it must run before the descriptor is closed.
func (s *Server) unwatchConn(c *conn) {
	w := s.watch
	if w == nil || c.wfd < 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, c.wfd, nil)
	}
	if w.fds[int32(c.wfd)] == c {
		delete(w.fds, int32(c.wfd))
	}
	c.wfd = -1
}

// stopWatch closes the epoll instance (its goroutine ends).
func (s *Server) stopWatch() {
	s.watchOnce.Do(func() {}) // no watcher is made after this
	if w := s.watch; w != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.closed {
			w.closed = true
			// The loop closes the epoll descriptor when it wakes: closing it here would
			// leave the loop's thread blocked in epoll_wait.
			_, _ = syscall.Write(w.wake[1], []byte{1})
			_ = syscall.Close(w.wake[1])
		}
	}
}

// unreadBytes returns how many bytes wait in the socket's receive queue (FIONREAD).
// The watcher's lock keeps the descriptor open meanwhile (unwatchConn runs before a close).
func (c *conn) unreadBytes() int {
	w := c.srv.watch
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.wfd < 0 {
		return 0
	}
	var n int32
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(c.wfd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return 0
	}
	return int(n)
}
