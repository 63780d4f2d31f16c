package h1guard

import "net"

// Guarded reports whether c is a connection returned by a guarded listener's Accept that the
// guard validates (not a *tls.Conn it handed over unguarded for HTTP/2 or a failed
// handshake). An HTTP/1 server that trusts the guard's framing checks serves only these.
func Guarded(c net.Conn) bool {
	switch c.(type) {
	case *conn, *tlsConn:
		return true
	}
	return false
}

// Heads returns how many request heads the guard validated on c, a connection Guarded
// accepts (0 for any other). Bytes the guard passed through (after an upgrade request, a
// TLS record or the HTTP/2 preface) are not counted: an HTTP/1 server that reads its n-th
// request head when Heads is below n reads bytes the guard did not check and must refuse
// them. Call it from the goroutine that reads c.
func Heads(c net.Conn) uint64 {
	switch g := c.(type) {
	case *conn:
		return g.p.heads
	case *tlsConn:
		return g.p.heads
	}
	return 0
}
