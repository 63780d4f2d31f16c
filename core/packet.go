package core

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// PacketService is a site instance that serves the site's port over UDP as well, with a
// protocol on QUIC (HTTP/3: modules/http3). The server opens one UDP socket per port whose
// sites have one, on the address and port its TCP listener bound, keeps it across
// generations as it keeps the TCP listener, and calls NewPacketServer once, on the instance
// of the generation that opened the socket. Every TLS site of the port must have one (one
// socket serves them all), and the port's TLS settings must allow TLS 1.3, which QUIC
// requires; Build reports both. Whether a port has a UDP socket is a cold field: adding or
// removing one needs a restart.
type PacketService interface {
	// PacketProtocol names the protocol in messages ("HTTP/3").
	PacketProtocol() string
	// NewPacketServer returns the server of the port's UDP socket.
	NewPacketServer(cfg PacketServerConfig) (PacketServer, error)
}

// PacketServerConfig is what the server gives a PacketService for one port.
type PacketServerConfig struct {
	// Port is the configured port.
	Port int
	// Addr is the UDP socket's local address.
	Addr net.Addr
	// Handler is the port's dispatcher, the same as the TCP listener's: canonical request
	// identity, the site by port and Host, the site's whole pipeline.
	Handler http.Handler
	// TLS is the port's TLS configuration: every handshake takes the current generation's
	// settings and a certificate chosen by SNI (GetConfigForClient), as on the TCP listener.
	// The service sets its own ALPN protocols on a clone.
	TLS *tls.Config
	// MaxHeaderBytes bounds a request's header section, as on the TCP listener.
	MaxHeaderBytes int
	// IdleTimeout closes a connection that has had no request for this long, as on the TCP
	// listener.
	IdleTimeout time.Duration
	// Current returns the port's PacketService in the current generation (the first site's of
	// the port that has one), so that a connection that starts after a reload uses the
	// reloaded settings; nil before the first generation or once the port has none.
	Current func() PacketService
	// Logger is the process logger.
	Logger *slog.Logger
}

// PacketServer serves one UDP socket. The server owns the socket: it closes it after
// Shutdown or Close returned.
type PacketServer interface {
	// Serve serves conn until Shutdown or Close; it then returns http.ErrServerClosed.
	Serve(conn net.PacketConn) error
	// Shutdown stops taking new requests (HTTP/3: GOAWAY) and waits for the requests in
	// flight until ctx is done.
	Shutdown(ctx context.Context) error
	// Close ends every connection at once.
	Close() error
}
