package wasm

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// TestWatchdogOnOneP checks that a guest spinning on the only P of the Go scheduler does
// not starve the watchdog: its loop's `memory.grow 0` lets the scheduler preempt it.
func TestWatchdogOnOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	code, err := instrument(spinWasm)
	if err != nil {
		t.Fatal(err)
	}
	wd := newWatchdog(20 * time.Millisecond)
	defer wd.close()
	rt := newGuestRuntime(wazero.NewCompilationCache(), &entrySpec{memPages: 16}, wd)
	defer rt.Close(context.Background())
	cm, err := rt.CompileModule(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
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
