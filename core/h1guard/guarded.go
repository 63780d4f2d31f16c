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
