package cli

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
)

// processLog is the process logger's output: text until the config asks for JSON lines
// (server.Generation.ProcessLogJSON), then JSON. Loggers derived from it before the switch
// (With, WithGroup) follow it too.
type processLog struct {
	out  io.Writer
	opts *slog.HandlerOptions
	root atomic.Pointer[slog.Handler]
}

// newProcessLog returns a text process log writing to out.
func newProcessLog(out io.Writer, opts *slog.HandlerOptions) *processLog {
	p := &processLog{out: out, opts: opts}
	var h slog.Handler = slog.NewTextHandler(out, opts)
	p.root.Store(&h)
	return p
}

// useJSON switches every logger of p to JSON lines.
func (p *processLog) useJSON() {
	var h slog.Handler = slog.NewJSONHandler(p.out, p.opts)
	p.root.Store(&h)
}

// logger returns the process logger.
func (p *processLog) logger() *slog.Logger { return slog.New(&switchHandler{p: p}) }

// switchHandler is a handler of a processLog: it remembers the attributes and groups added
// to it and applies them to whichever handler the process log currently uses, caching the
// result per handler.
type switchHandler struct {
	p      *processLog
	derive func(slog.Handler) slog.Handler // nil for the root
	cache  atomic.Pointer[derived]
}

// derived is a switchHandler's handler for one root handler.
type derived struct {
	root *slog.Handler
	h    slog.Handler
}

func (s *switchHandler) current() slog.Handler {
	root := s.p.root.Load()
	if s.derive == nil {
		return *root
	}
	if d := s.cache.Load(); d != nil && d.root == root {
		return d.h
	}
	h := s.derive(*root)
	s.cache.Store(&derived{root: root, h: h})
	return h
}

// Enabled implements slog.Handler.
func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.current().Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.current().Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (s *switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

// WithGroup implements slog.Handler.
func (s *switchHandler) WithGroup(name string) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (s *switchHandler) with(step func(slog.Handler) slog.Handler) slog.Handler {
	parent := s.derive
	if parent == nil {
		return &switchHandler{p: s.p, derive: step}
	}
	return &switchHandler{p: s.p, derive: func(h slog.Handler) slog.Handler { return step(parent(h)) }}
}
