package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// spinWasm is wat2wasm's output for (module (memory 1) (global $g (mut i32) (i32.const 0)) (start $init)
// (func $init (global.set $g (i32.const 7)))
// (func (export "spin") (loop $l (br $l)))
// (func (export "get") (result i32) (global.get $g))
// (func (export "count") (param i32) (result i32) (local i32)
// (loop $l (local.set 1 (i32.add (local.get 1) (i32.const 1)))
// (br_if $l (i32.lt_u (local.get 1) (local.get 0)))) (local.get 1))):
// an endless loop, a start function, a global it sets, and a loop that ends.
var spinWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0d, 0x03, 0x60, 0x00, 0x00, 0x60, 0x00,
	0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03, 0x05, 0x04, 0x00, 0x00, 0x01, 0x02, 0x05, 0x03,
	0x01, 0x00, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b, 0x07, 0x16, 0x03, 0x04, 0x73,
	0x70, 0x69, 0x6e, 0x00, 0x01, 0x03, 0x67, 0x65, 0x74, 0x00, 0x02, 0x05, 0x63, 0x6f, 0x75, 0x6e,
	0x74, 0x00, 0x03, 0x08, 0x01, 0x00, 0x0a, 0x2d, 0x04, 0x06, 0x00, 0x41, 0x07, 0x24, 0x00, 0x0b,
	0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, 0x04, 0x00, 0x23, 0x00, 0x0b, 0x17, 0x01, 0x01,
	0x7f, 0x03, 0x40, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, 0x20, 0x01, 0x20, 0x00, 0x49, 0x0d,
	0x00, 0x0b, 0x20, 0x01, 0x0b,
}

// spinRuntime compiles the instrumented spin.wat guest in a guest runtime whose watchdog
// allows timeout; both are closed when the test ends.
func spinRuntime(t *testing.T, timeout time.Duration) (*guestRuntime, wazero.CompiledModule, *watchdog) {
	t.Helper()
	code, err := instrument(spinWasm)
	if err != nil {
		t.Fatal(err)
	}
	rt := newGuestRuntime(wazero.NewCompilationCache(), &entrySpec{memPages: 16, timeout: timeout}, nil)
	wd := rt.wd
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	cm, err := rt.CompileModule(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	return rt, cm, wd
}

// guardedSpin instantiates spinWasm, instrumented, in a guestRuntime whose watchdog
// allows timeout.
func guardedSpin(t *testing.T, timeout time.Duration) (*guestModule, *watchdog) {
	t.Helper()
	rt, cm, wd := spinRuntime(t, timeout)
	m, err := rt.InstantiateModule(context.Background(), cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	return m.(*guestModule), wd
}

// TestWatchdogStopsEndlessLoop checks that an endless loop ends within the timeout and a
// few ticks with errInterrupted and a closed instance, while a call that finishes in time
// is not disturbed, and that the start function ran (as the export instrument made of it).
func TestWatchdogStopsEndlessLoop(t *testing.T) {
	m, wd := guardedSpin(t, 20*time.Millisecond)
	stack := make([]uint64, 1)
	if err := m.call(context.Background(), m.Module.ExportedFunction("get"), stack); err != nil || stack[0] != 7 {
		t.Fatalf("get: %v %d, want 7 (the start function sets it)", err, stack[0])
	}
	stack[0] = 1000
	if err := m.call(context.Background(), m.Module.ExportedFunction("count"), stack); err != nil || stack[0] != 1000 {
		t.Fatalf("count: %v %d, want 1000", err, stack[0])
	}
	start := time.Now()
	err := m.call(context.Background(), m.Module.ExportedFunction("spin"), nil)
	took := time.Since(start)
	var exit *sys.ExitError
	if !errors.Is(err, errInterrupted) || !errors.As(err, &exit) {
		t.Fatalf("spin: %v, want errInterrupted and a sys.ExitError", err)
	}
	if took < wd.timeout {
		t.Fatalf("spin stopped after %v, before its timeout %v", took, wd.timeout)
	}
	// Generous: the machine may be loaded, but the loop must not run on.
	if took > wd.timeout+2*wd.tick+2*time.Second {
		t.Fatalf("spin stopped after %v (timeout %v, tick %v)", took, wd.timeout, wd.tick)
	}
	if !m.IsClosed() {
		t.Fatal("the interrupted instance is still open")
	}
}

// TestWatchdogConcurrent runs short calls on many instances while others loop forever:
// only the loops are interrupted. Run with -race.
func TestWatchdogConcurrent(t *testing.T) {
	rt, cm, _ := spinRuntime(t, 30*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := rt.InstantiateModule(context.Background(), cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
			if err != nil {
				errs <- err
				return
			}
			gm := m.(*guestModule)
			if i%4 == 0 {
				if err := gm.call(context.Background(), gm.Module.ExportedFunction("spin"), nil); !errors.Is(err, errInterrupted) {
					errs <- errors.New("spin was not interrupted: " + errString(err))
				}
				return
			}
			stack := make([]uint64, 1)
			deadline := time.Now().Add(200 * time.Millisecond)
			for time.Now().Before(deadline) {
				stack[0] = 100
				if err := gm.call(context.Background(), gm.Module.ExportedFunction("count"), stack); err != nil || stack[0] != 100 {
					errs <- errors.New("count: " + errString(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestInstrumentFixtures instruments every committed guest (the Go ones exercise most of
// the instruction set): each still compiles. (TestWatchdogStopsEndlessLoop checks what an
// instrumented module exports by instantiating spinWasm.)
func TestInstrumentFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "plugins", "wasm", "*", "*.wasm"))
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, f := range files {
		code, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := instrument(code)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, err := rt.CompileModule(ctx, out); err != nil {
			t.Errorf("%s: the instrumented module does not compile: %v", f, err)
		}
	}
}

// TestInstrumentRefuses checks the modules instrument refuses.
func TestInstrumentRefuses(t *testing.T) {
	// A function that sets global 0 in a module without globals: after instrumenting,
	// global 0 would be the interrupt global.
	setsInterrupt := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
		0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0x24, 0x00, 0x0b}
	for name, code := range map[string][]byte{
		"empty":               nil,
		"not wasm":            []byte("(module)"),
		"truncated":           spinWasm[:len(spinWasm)-3],
		"sets the interrupt":  setsInterrupt,
		"unknown instruction": append(append([]byte{}, setsInterrupt[:len(setsInterrupt)-5]...), 0x06, 0x00, 0x41, 0x00, 0xff, 0x0b),
	} {
		if _, err := instrument(code); err == nil {
			t.Errorf("%s: instrumented", name)
		}
	}
}

// FuzzInstrument checks that instrument never panics, and that whatever wazero compiles,
// instrument accepts and its output compiles too. (Its corpus keeps an input on which
// wazero v1.12.0's validator panics, which compile turns into an error.)
func FuzzInstrument(f *testing.F) {
	f.Add(spinWasm)
	files, _ := filepath.Glob(filepath.Join("..", "..", "plugins", "wasm", "wat", "*.wasm"))
	for _, file := range files {
		if code, err := os.ReadFile(file); err == nil {
			f.Add(code)
		}
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, code []byte) {
		out, err := instrument(code)
		cm, cerr := compile(ctx, rt, code)
		if cerr != nil {
			return
		}
		defer cm.Close(ctx)
		if err != nil {
			t.Fatalf("wazero compiles the module, instrument refuses it: %v", err)
		}
		cm2, err := compile(ctx, rt, out)
		if err != nil {
			t.Fatalf("the instrumented module does not compile: %v", err)
		}
		_ = cm2.Close(ctx)
	})
}

// TestGuestRuntimeClosesCompiled checks that closing a guestRuntime closes the modules
// compiled in it, once, and that it compiles nothing afterwards.
func TestGuestRuntimeClosesCompiled(t *testing.T) {
	ctx := context.Background()
	code, err := instrument(spinWasm)
	if err != nil {
		t.Fatal(err)
	}
	rt := newGuestRuntime(wazero.NewCompilationCache(), &entrySpec{memPages: 16, timeout: time.Second}, nil)
	for range 2 {
		if _, err := rt.CompileModule(ctx, code); err != nil {
			t.Fatal(err)
		}
	}
	if len(rt.compiled) != 2 {
		t.Fatalf("%d compiled modules tracked, want 2", len(rt.compiled))
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rt.compiled) != 0 || !rt.closed {
		t.Fatal("the compiled modules were not released")
	}
	if _, err := rt.CompileModule(ctx, code); err == nil {
		t.Fatal("a closed runtime compiled a module")
	}
}
