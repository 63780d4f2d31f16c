package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// ErrNoConfigFile is returned by Reload when the server has no configuration source: no
// Options.Source, and the running configuration did not come from a file.
var ErrNoConfigFile = errors.New("the running configuration was not loaded from a file")

// Reload loads the configuration again from the server's source (a file re-reads the
// environment for $VAR substitution; Options.Source), builds a new generation beside the
// running one and swaps it in. On any error the running generation stays; the returned
// diagnostics hold every error and warning. A source that is a core.ConfigReporter is told
// the outcome. Reloads are serialised. Every reload is logged on the process logger, whatever
// asked for it (SIGHUP, a watch, the Admin API): each warning's text, then "config
// reloaded", or each error and "reload refused"/"reload failed" with the cause.
func (s *Server) Reload(ctx context.Context) (*config.Diagnostics, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	src, d, err := s.reload(ctx)
	name := ""
	if src != nil {
		name = src.String()
		Report(src, d, err)
	}
	s.logReload(name, d, err)
	res := &ReloadResult{At: time.Now()}
	if d != nil {
		res.Warnings = len(d.Warnings())
	}
	if err != nil {
		res.Err = err.Error()
	}
	s.lastReload.Store(res)
	return d, err
}

// source returns the configuration source of reloads (nil: none).
func (s *Server) source() core.ConfigSource {
	if s.opts.Source != nil {
		return s.opts.Source
	}
	if cur := s.current.Load(); cur != nil && cur.ConfigPath != "" {
		return FileSource(cur.ConfigPath)
	}
	return nil
}

// reload is Reload without the log and the report; src is the source it loaded.
func (s *Server) reload(ctx context.Context) (src core.ConfigSource, d *config.Diagnostics, err error) {
	src = s.source()
	if src == nil {
		return nil, nil, ErrNoConfigFile
	}
	g, d, err := LoadSource(ctx, src, s.BuildOptions())
	if err != nil {
		return src, nil, fmt.Errorf("reload: %w", err)
	}
	if d.HasErrors() {
		return src, d, d.Err()
	}
	if err := s.Swap(g); err != nil {
		g.Stop(context.Background())
		return src, d, err
	}
	return src, d, nil
}

// logReload logs a reload's warnings and errors with their config paths, then its outcome.
func (s *Server) logReload(path string, d *config.Diagnostics, err error) {
	if d != nil {
		for _, w := range d.Warnings() {
			s.log.Warn(w.Message, "path", w.Where())
		}
		for _, e := range d.Errors() {
			s.log.Error(e.Message, "path", e.Where())
		}
	}
	var cold *ColdFieldsError
	switch {
	case err == nil:
		s.log.Info("config reloaded", "path", path, "warnings", len(d.Warnings()))
	case errors.As(err, &cold):
		s.log.Error("reload refused; keeping the running config", "path", path, "err", err)
	default:
		s.log.Error("reload failed; keeping the running config", "path", path, "err", err)
	}
}

// Inflight returns the number of requests being served, over every generation.
func (s *Server) Inflight() int64 { return s.inflight.Load() }
