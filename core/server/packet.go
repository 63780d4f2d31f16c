package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// checkPacketPorts finds each port's core.PacketService (the first site's of the port that
// has one) and reports what one UDP socket per port cannot serve: a TLS site of the port
// without the service, a plain-HTTP port, and TLS settings that exclude TLS 1.3.
func (g *Generation) checkPacketPorts(d *config.Diagnostics) {
	for _, pt := range g.ports {
		var first *Site
		for _, s := range pt.sites {
			for _, inst := range s.instances {
				if ps, ok := inst.(core.PacketService); ok && pt.packet == nil {
					pt.packet, first = ps, s
				}
			}
		}
		if first == nil {
			continue
		}
		proto := pt.packet.PacketProtocol()
		if !first.Info.TLS {
			d.Errorf(first.Info.Path, "serves %s, which needs TLS (a tls block)", proto)
			continue
		}
		for _, s := range pt.sites {
			if s != first && !hasPacketService(s) {
				d.Errorf(s.Info.Path, "shares port %d with %s, which serves %s over UDP; one UDP socket serves every site of a port, so this site must serve it too (or use another port)",
					pt.port, siteName(first), proto)
			}
		}
		if ts := g.tlsSite(pt.port); ts != nil && ts.TLS.maxVersion < tls.VersionTLS13 {
			d.Errorf(config.Join(ts.Info.Path, "tls.versions"), "excludes TLSv1.3, which %s (QUIC) on port %d requires", proto, pt.port)
		}
	}
}

// hasPacketService reports whether one of s's instances is a core.PacketService.
func hasPacketService(s *Site) bool {
	for _, inst := range s.instances {
		if _, ok := inst.(core.PacketService); ok {
			return true
		}
	}
	return false
}

// coldPacketChanges lists the ports of both generations that gained or lost their UDP
// socket (a restart is needed to open or close one).
func coldPacketChanges(old, g *Generation) []string {
	var out []string
	for port, npt := range g.ports {
		opt, ok := old.ports[port]
		if !ok || (opt.packet != nil) == (npt.packet != nil) {
			continue
		}
		change := "added"
		if npt.packet == nil {
			change = "removed"
		}
		out = append(out, fmt.Sprintf("UDP listener of port %d %s (%s)", port, change, siteName(npt.sites[0])))
	}
	return out
}

// openPacket opens the UDP socket of l's port when g's port has a core.PacketService: on
// the address the TCP listener bound (so a test's ephemeral port is the same number), with
// the TCP listener's TLS configuration and dispatcher.
func (s *Server) openPacket(g *Generation, l *listener) error {
	pt := g.ports[l.port]
	if pt == nil || pt.packet == nil || l.srv.TLSConfig == nil {
		return nil
	}
	pc, err := s.listenPacket(l.ln.Addr().String())
	if err != nil {
		return fmt.Errorf("listen on UDP %s: %w", l.ln.Addr(), err)
	}
	port := l.port
	ps, err := pt.packet.NewPacketServer(core.PacketServerConfig{
		Port:           port,
		Addr:           pc.LocalAddr(),
		Handler:        &dispatcher{srv: s, port: port},
		TLS:            l.srv.TLSConfig.Clone(), // net/http's Serve adds its ALPN to the original
		MaxHeaderBytes: DefaultMaxHeaderBytes,
		IdleTimeout:    DefaultIdleTimeout,
		Current: func() core.PacketService {
			if cur := s.current.Load(); cur != nil && cur.ports[port] != nil {
				return cur.ports[port].packet
			}
			return nil
		},
		Logger: s.log,
	})
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("port %d: %s: %w", port, pt.packet.PacketProtocol(), err)
	}
	l.udp, l.packet = pc, ps
	return nil
}

// servePacket serves l's UDP socket; an error other than a shutdown is reported by Wait.
func (s *Server) servePacket(l *listener) {
	err := l.packet.Serve(l.udp)
	if s.isClosed() {
		return
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.serveErr <- fmt.Errorf("UDP listener :%d: %w", l.port, err)
	}
}

// shutdownPacket stops l's packet server gracefully (or at once when ctx ends first) and
// closes the UDP socket.
func (l *listener) shutdownPacket(ctx context.Context) error {
	if l.packet == nil {
		return nil
	}
	err := l.packet.Shutdown(ctx)
	if err != nil {
		_ = l.packet.Close()
		err = fmt.Errorf("port %d (UDP): %w", l.port, err)
	}
	_ = l.udp.Close()
	return err
}

// closePacket closes l's packet server and UDP socket at once (a start that failed).
func (l *listener) closePacket() {
	if l.packet != nil {
		_ = l.packet.Close()
		_ = l.udp.Close()
	}
}
