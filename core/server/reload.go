package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/conduitproxy/conduit/core/config"
)

// ErrNoConfigFile is returned by Reload when the running configuration did not come from a
// file.
var ErrNoConfigFile = errors.New("the running configuration was not loaded from a file")

// Reload re-reads the running generation's config file (re-reading the environment for $VAR
// substitution), builds a new generation beside the running one and swaps it in. On any
// error the running generation stays; the returned diagnostics hold every error and
// warning. Reloads are serialised. Every reload is logged on the process logger, whatever
// asked for it (SIGHUP, the file watch, the Admin API): each warning's text, then
// "config reloaded", or each error and "reload refused"/"reload failed" with the cause.
func (s *Server) Reload(ctx context.Context) (*config.Diagnostics, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	path, d, err := s.reload(ctx)
	s.logReload(path, d, err)
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

// reload is Reload without the log; path is the config file it read.
func (s *Server) reload(ctx context.Context) (path string, d *config.Diagnostics, err error) {
	cur := s.current.Load()
	if cur == nil || cur.ConfigPath == "" {
		return "", nil, ErrNoConfigFile
	}
	g, d, err := LoadAndBuild(ctx, cur.ConfigPath, s.BuildOptions())
	if err != nil {
		return cur.ConfigPath, nil, fmt.Errorf("reload: %w", err)
	}
	if d.HasErrors() {
		return cur.ConfigPath, d, d.Err()
	}
	if err := s.Swap(g); err != nil {
		g.Stop(context.Background())
		return cur.ConfigPath, d, err
	}
	return cur.ConfigPath, d, nil
}

// logReload logs a reload's warnings and errors with their config paths, then its outcome.
func (s *Server) logReload(path string, d *config.Diagnostics, err error) {
	if d != nil {
		for _, w := range d.Warnings() {
			s.log.Warn(w.Message, "path", w.Path)
		}
		for _, e := range d.Errors() {
			s.log.Error(e.Message, "path", e.Path)
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
