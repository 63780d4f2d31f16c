package core

import (
	"context"
	"net"
	"net/netip"
)

// ConnHandler is a site instance that serves the raw connections of its site's port instead
// of HTTP (the tcp module's proxy). The server hands it every connection accepted on the
// port, after the TLS handshake when the site has a tls block; the port then serves no HTTP.
// A site with a ConnHandler has its port to itself, and its other keys must belong to
// modules whose instance plays a connection role (ConnHandler, ConnFilter,
// CertificateSource); core/server reports anything else at its path.
type ConnHandler interface {
	// ServeConn serves c until it ends, and closes it. ctx is cancelled when the server's
	// shutdown timeout has passed; the server then closes c as well. A reload does not end
	// the connection: it keeps the generation it was accepted on.
	ServeConn(ctx context.Context, c net.Conn)
}

// ConnAdmitter is a ConnHandler that bounds its connections (the tcp module's
// maxConnections). The server asks it about each connection the ConnFilters let through,
// before the TLS handshake, so that a connection over the bound costs no handshake and is not
// held through one.
type ConnAdmitter interface {
	ConnHandler
	// AdmitConn reports whether c may be served. When it may, the server calls release once
	// the connection is over: after ServeConn returns, or when the TLS handshake failed and
	// ServeConn was never called. When it may not, the server closes c at once.
	AdmitConn(c net.Conn) (release func(), ok bool)
}

// ConnFilter is a site instance that decides, before any byte is read, whether a raw
// connection of a ConnHandler site is served (the IP filter and its runtime deny list). A
// refused connection is closed at once.
type ConnFilter interface {
	// AllowConn reports whether a connection from the peer address addr (IPv4-mapped
	// addresses unmapped) may be served.
	AllowConn(addr netip.Addr) bool
}
