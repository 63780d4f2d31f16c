package h1engine

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

type ctxKey struct{}

// TestReqContext: the engine's request context carries the connection's values, ends
// with context.Canceled, and ends what was derived from it (WithCancel, WithTimeout,
// AfterFunc, registered before or after the end), as context.WithCancel's would.
func TestReqContext(t *testing.T) {
	c := &reqContext{parent: context.WithValue(context.Background(), ctxKey{}, "v")}
	if c.Value(ctxKey{}) != "v" || c.Err() != nil {
		t.Fatalf("value %v err %v", c.Value(ctxKey{}), c.Err())
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("deadline set")
	}
	child, stopChild := context.WithCancel(c)
	defer stopChild()
	timed, stopTimed := context.WithTimeout(c, time.Hour)
	defer stopTimed()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	unregistered := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(unregistered) })
	if !stop() {
		t.Fatal("AfterFunc stop: not registered")
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("done before cancel")
	default:
	}
	c.cancel()
	c.cancel()
	for name, ch := range map[string]<-chan struct{}{"Done": done, "WithCancel": child.Done(), "WithTimeout": timed.Done(), "AfterFunc": ran} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not ended by cancel", name)
		}
	}
	select {
	case <-unregistered:
		t.Fatal("a stopped AfterFunc ran")
	case <-time.After(10 * time.Millisecond):
	}
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) || !errors.Is(context.Cause(c), context.Canceled) {
		t.Fatalf("errors %v %v %v", c.Err(), child.Err(), context.Cause(c))
	}
	late, stopLate := context.WithCancel(c)
	defer stopLate()
	select {
	case <-late.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context derived after the cancel is not done")
	}
	fresh := &reqContext{parent: context.Background()}
	fresh.cancel()
	if _, ok := <-fresh.Done(); ok {
		t.Fatal("Done of a context cancelled before its first Done call is not closed")
	}
}

// TestRequestContextEnds: on both engines, a context derived from the request's in the
// handler ends when the handler returns.
func TestRequestContextEnds(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			derived := make(chan context.Context, 1)
			addr, _ := startWith(t, engine, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithTimeout(r.Context(), time.Hour)
				_ = cancel // ended by the request's end
				derived <- ctx
				_, _ = io.WriteString(w, "ok")
			}))
			c := dial(t, addr)
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			_, _ = io.ReadAll(c)
			select {
			case <-(<-derived).Done():
			case <-time.After(5 * time.Second):
				t.Fatal("derived context not ended after the handler returned")
			}
		})
	}
}
