package h1engine

import (
	"context"
	"sync"
	"time"
)

// closedDone is the Done channel of a request context cancelled before anyone asked for it.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// reqContext is a request's context when the connection's context can never be cancelled
// (its Done is nil): the parent's values, no deadline, cancelled when the handler returns or
// the client goes away. It lives in the request's reqMem, so it costs no allocation of its
// own (context.WithCancel costs two). Its AfterFunc method is what the context package
// uses to attach derived contexts (context.WithCancel, WithTimeout, AfterFunc) without a
// goroutine.
type reqContext struct {
	parent context.Context
	runMu  sync.Mutex // held by cancel while it runs the registered functions
	mu     sync.Mutex
	done   chan struct{} // made at the first Done call, or closedDone
	err    error
	funcs  []*afterFunc
}

// afterFunc is one AfterFunc registration.
type afterFunc struct{ f func() }

// Deadline implements context.Context: a request context has none (its parent has none:
// a context with a deadline has a Done channel).
func (c *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (c *reqContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedDone
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

// Err implements context.Context: context.Canceled once cancelled, else nil.
func (c *reqContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value implements context.Context with the parent's values.
func (c *reqContext) Value(key any) any { return c.parent.Value(key) }

// String names the context (fmt, as context's own types do).
func (c *reqContext) String() string { return "h1engine request context" }

// AfterFunc arranges for f to run once c is cancelled, and returns a function that
// unregisters f and reports whether it did so before f ran. The context package calls it
// with its own functions (a derived context's cancel); when c is already cancelled, f runs
// in its own goroutine, because the caller may hold a lock that f takes.
func (c *reqContext) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.funcs = append(c.funcs, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.funcs {
			if x == a {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends c with context.Canceled and runs the registered functions; later calls do
// nothing but wait until the first call has run them, so that once the engine's own cancel
// returns, no registered function (which may read a context wrapping c, recycled by
// Server.EndRequestContext next) still runs from a client-gone report.
func (c *reqContext) cancel() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, a := range funcs {
		a.f()
	}
}
