package wasm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// TestWatchdogOnOneP checks that a guest spinning on the only P of the Go scheduler does
// not starve the watchdog: its loop's `memory.grow 0` lets the scheduler preempt it.
func TestWatchdogOnOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rt, cm, _ := spinRuntime(t, 20*time.Millisecond)
	m, err := rt.InstantiateModule(context.Background(), cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	gm := m.(*guestModule)
	done := make(chan error)
	go func() { done <- gm.call(context.Background(), gm.Module.ExportedFunction("spin"), nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, errInterrupted) {
			t.Fatalf("spin: %v, want errInterrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog was starved: spin still runs after 10s")
	}
}

// TestInterruptedInstanceDropped checks, through a conduit-ABI entry keeping instances
// (reuse and reset), that a request whose guest loops forever is answered (it passes:
// onError allow) within the timeout and a few ticks, that the interrupted instance is not
// put back into the pool, and that the entry serves the next request.
func TestInterruptedInstanceDropped(t *testing.T) {
	for _, mode := range []string{instancesReuse, instancesReset} {
		t.Run(mode, func(t *testing.T) {
			mw := testEntry(t, "wat/probe.wasm", mode, 30*time.Millisecond)
			e := mw.(*conduitEntry)
			passed := false
			h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				passed = true
				w.WriteHeader(http.StatusNoContent)
			}))
			if len(e.pool) != 1 {
				t.Fatalf("%d idle instances, want the one made at load", len(e.pool))
			}
			looped := <-e.pool
			e.pool <- looped
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("X-Op", "W")
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, r)
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("the endless loop was answered after %v", took)
			}
			if !passed || w.Code != http.StatusNoContent {
				t.Fatalf("got %d (passed %v), want the request to pass", w.Code, passed)
			}
			if !looped.m.IsClosed() {
				t.Fatal("the interrupted instance was not closed")
			}
			if len(e.pool) != 0 {
				t.Fatalf("%d idle instances after the loop, want none: the interrupted one is not kept", len(e.pool))
			}
			r = httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("X-Op", "M")
			w = httptest.NewRecorder()
			passed = false
			h.ServeHTTP(w, r)
			if passed || w.Body.String() != "POST" {
				t.Fatalf("after the loop: %d %q (passed %v), want the guest's answer POST", w.Code, w.Body.String(), passed)
			}
		})
	}
}
