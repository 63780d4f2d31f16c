package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/conduitproxy/conduit/core/config"
)

// ErrNoConfigFile is returned by Reload when the running configuration did not come from a
// file.
var ErrNoConfigFile = errors.New("the running configuration was not loaded from a file")

// Reload re-reads the running generation's config file (re-reading the environment for $VAR
// substitution), builds a new generation beside the running one and swaps it in. On any
// error the running generation stays; the returned diagnostics hold every error and
// warning. Reloads are serialised.
func (s *Server) Reload(ctx context.Context) (*config.Diagnostics, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.current.Load()
	if cur == nil || cur.ConfigPath == "" {
		return nil, ErrNoConfigFile
	}
	g, d, err := LoadAndBuild(ctx, cur.ConfigPath, s.BuildOptions())
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	if d.HasErrors() {
		return d, d.Err()
	}
	if err := s.Swap(g); err != nil {
		g.Stop(context.Background())
		return d, err
	}
	s.log.Info("config reloaded", "path", cur.ConfigPath, "warnings", len(d.Warnings()))
	return d, nil
}

// Inflight returns the number of requests being served, over every generation.
func (s *Server) Inflight() int64 { return s.inflight.Load() }
