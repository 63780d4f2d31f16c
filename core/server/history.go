package server

import (
	"time"
)

// ReloadResult is the outcome of the last reload the server attempted (Server.LastReload).
type ReloadResult struct {
	// At is when the reload finished.
	At time.Time
	// Err is why the reload was refused or failed ("" when it succeeded).
	Err string
	// Warnings counts the warnings of the configuration it read.
	Warnings int
}

// Number is the generation's sequence number: 1 for the configuration the server started
// with, one more for each generation swapped in after it (0 until the server activates it).
func (g *Generation) Number() uint64 { return g.number }

// ActiveSince is when the server made the generation current (zero until then).
func (g *Generation) ActiveSince() time.Time { return g.activeSince }

// activate stamps g as the next generation; s.mu is held.
func (s *Server) activate(g *Generation) {
	s.generations++
	g.number = s.generations
	g.activeSince = time.Now()
	if s.started.IsZero() {
		s.started = g.activeSince
	}
}

// StartedAt is when the server made its first generation current (zero before).
func (s *Server) StartedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// LastReload returns the outcome of the last reload, nil when there was none.
func (s *Server) LastReload() *ReloadResult { return s.lastReload.Load() }
