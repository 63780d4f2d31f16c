package server

import (
	"net"
	"path/filepath"

	"github.com/conduitproxy/conduit/core/config"
)

// listenPacket opens the UDP socket of a port with a core.PacketService on addr: through
// Options.ListenPacket when set (a binary upgrade adopts the inherited socket there), else
// net.ListenPacket.
func (s *Server) listenPacket(addr string) (net.PacketConn, error) {
	if s.opts.ListenPacket != nil {
		return s.opts.ListenPacket(addr)
	}
	return net.ListenPacket("udp", addr)
}

// checkPIDFile reports a global.pidFile that is present but empty or not an absolute path
// (a relative one would depend on the working directory of whoever started the process).
func checkPIDFile(raw map[string]config.Node, path string, d *config.Diagnostics) {
	if _, set := raw["pidFile"]; !set {
		return
	}
	if path == "" || !filepath.IsAbs(path) {
		d.Errorf("global.pidFile", "must be an absolute file path, got %q", path)
	}
}

// coldPIDFileChange reports a changed global.pidFile: the file is written when a process
// starts (and by the new process of a binary upgrade), so a reload cannot move it.
func coldPIDFileChange(old, g *Generation) []string {
	if old.Global.PIDFile != g.Global.PIDFile {
		return []string{"global.pidFile"}
	}
	return nil
}
