//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// canCheckAlive reports that connectionAlive can look at a socket without blocking.
const canCheckAlive = true

// connectionAlive reports whether an idle upstream connection may still carry a request:
// a non-blocking peek finds nothing to read. An end of stream (the upstream closed it), an
// error, or unexpected bytes (a stray response, a TLS close_notify) mean it must not be
// used. It costs one system call, paid only by requests that cannot be retried.
func connectionAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
		return true // never wait
	})
	return err == nil && alive
}
