package wasm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// guestRuntime is the wazero.Runtime of one entry (or one http-wasm pool). It
//   - closes the modules it compiled when it is closed: a shared compilation cache keeps a
//     compiled module until every CompileModule of it is matched by a Close (wazero's
//     engine counts them), so without this every reload that changed a .wasm would keep
//     the old code for the life of the process;
//   - starts the guest instances it makes itself, running the module's start function
//     (which instrument turned into the export startExport), then `_start` and
//     `_initialize` as Traefik does (a TinyGo http-wasm guest registers its handlers in
//     main), under its watchdog, and hands out their functions wrapped so each call is
//     bounded by it;
//   - owns that watchdog (watchdog.go), which stops when the runtime is closed.
type guestRuntime struct {
	wazero.Runtime
	wd *watchdog
	// consts are the exports whose body is at most a constant (analysis.go): their calls
	// return it at once without entering the guest.
	consts map[string]uint64

	mu       sync.Mutex
	compiled []wazero.CompiledModule
	closed   bool
}

// startExport names the export instrument gives the module's start function.
const startExport = "conduit:start"

// errInterrupted is the error of a call the watchdog stopped.
var errInterrupted = errors.New("ran for longer than timeoutMs")

// newGuestRuntime returns a runtime with the entry's memory cap and the shared compilation
// cache, whose calls its own watchdog bounds by the entry's timeout. The exports in consts
// (guestFacts.consts, or nil) are not called: they return their constant.
func newGuestRuntime(cache wazero.CompilationCache, es *entrySpec, consts map[string]uint64) *guestRuntime {
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(es.memPages)
	return &guestRuntime{Runtime: wazero.NewRuntimeWithConfig(context.Background(), cfg),
		wd: newWatchdog(es.timeout), consts: consts}
}

// compile compiles code in rt; a panic in wazero's validator (FuzzInstrument found one
// in v1.12.0 for a malformed function body) is returned as an error.
func compile(ctx context.Context, rt wazero.Runtime, code []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			cm, err = nil, fmt.Errorf("invalid module (wazero panicked: %v)", p)
		}
	}()
	return rt.CompileModule(ctx, code)
}

// CompileModule implements wazero.Runtime; the module is closed with the runtime.
func (r *guestRuntime) CompileModule(ctx context.Context, code []byte) (wazero.CompiledModule, error) {
	cm, err := compile(ctx, r.Runtime, code)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = cm.Close(ctx)
		return nil, errors.New("compiling a guest: the runtime is closed")
	}
	r.compiled = append(r.compiled, cm)
	return cm, nil
}

// InstantiateModule implements wazero.Runtime: it instantiates cm (which must come from
// instrument's code, with no start functions in mc), runs its start functions under the
// watchdog, and returns the instance wrapped as a *guestModule. An instance made for an
// http-wasm request restarts that request's call clock (instantiated).
func (r *guestRuntime) InstantiateModule(ctx context.Context, cm wazero.CompiledModule, mc wazero.ModuleConfig) (api.Module, error) {
	m, err := r.Runtime.InstantiateModule(ctx, cm, mc)
	if err != nil {
		return nil, err
	}
	g, ok := m.ExportedGlobal(interruptExport).(api.MutableGlobal)
	if !ok {
		_ = m.Close(ctx)
		return nil, errors.New("the guest was not instrumented for timeoutMs")
	}
	gm := &guestModule{Module: m, rt: r}
	gm.slot.intr = g
	r.wd.add(&gm.slot)
	for _, name := range []string{startExport, "_start", "_initialize"} {
		fn := m.ExportedFunction(name)
		if fn == nil {
			continue
		}
		if err := gm.call(ctx, fn, nil); err != nil {
			_ = gm.Close(ctx)
			return nil, fmt.Errorf("running %s: %w", name, err)
		}
	}
	instantiated(ctx)
	return gm, nil
}

// Close implements wazero.Runtime.
func (r *guestRuntime) Close(ctx context.Context) error { return r.CloseWithExitCode(ctx, 0) }

// CloseWithExitCode implements wazero.Runtime: it closes the runtime's instances, then the
// modules it compiled, and stops the watchdog.
func (r *guestRuntime) CloseWithExitCode(ctx context.Context, code uint32) error {
	err := r.Runtime.CloseWithExitCode(ctx, code)
	r.wd.close()
	r.mu.Lock()
	compiled := r.compiled
	r.compiled, r.closed = nil, true
	r.mu.Unlock()
	for _, cm := range compiled {
		_ = cm.Close(ctx)
	}
	return err
}

// guestModule is a guest instance whose calls the watchdog bounds. It runs one call at a
// time (an instance is never shared by two requests).
type guestModule struct {
	api.Module
	rt   *guestRuntime
	slot slot
}

// call runs fn with stack under the watchdog. A call the watchdog interrupted closes the
// instance and returns an error wrapping errInterrupted and sys.ExitError (so every
// caller sees that the instance is gone).
func (m *guestModule) call(ctx context.Context, fn api.Function, stack []uint64) error {
	wd := m.rt.wd
	wd.begin(&m.slot)
	err := fn.CallWithStack(ctx, stack)
	if wd.end(&m.slot) {
		_ = m.CloseWithExitCode(ctx, sys.ExitCodeDeadlineExceeded)
		return fmt.Errorf("%w (%v): %w", errInterrupted, wd.timeout, sys.NewExitError(sys.ExitCodeDeadlineExceeded))
	}
	return err
}

// Close implements api.Module.
func (m *guestModule) Close(ctx context.Context) error { return m.CloseWithExitCode(ctx, 0) }

// CloseWithExitCode implements api.Module: the instance leaves the watchdog.
func (m *guestModule) CloseWithExitCode(ctx context.Context, code uint32) error {
	m.rt.wd.remove(&m.slot)
	return m.Module.CloseWithExitCode(ctx, code)
}

// ExportedFunction implements api.Module: the function's calls are bounded by the
// watchdog.
func (m *guestModule) ExportedFunction(name string) api.Function {
	fn := m.Module.ExportedFunction(name)
	if fn == nil {
		return nil
	}
	def := fn.Definition()
	params, results := len(def.ParamTypes()), len(def.ResultTypes())
	v, constant := m.rt.consts[name]
	return &guestFunction{Function: fn, m: m, params: params, results: results,
		stack: make([]uint64, max(params, results)), constant: constant, value: v}
}

// guestFunction is an exported function of a guestModule. Its parameter and result counts
// are read once and Call reuses one stack, so a call through Call allocates nothing here:
// the http-wasm host library calls each instance's handle_request and handle_response
// through Call on every request.
type guestFunction struct {
	api.Function
	m               *guestModule
	params, results int
	stack           []uint64 // Call's parameters and results; the module runs one call at a time
	constant        bool     // the body is at most a constant (value): not called
	value           uint64
}

// CallWithStack implements api.Function.
func (f *guestFunction) CallWithStack(ctx context.Context, stack []uint64) error {
	if f.constant {
		if f.results > 0 {
			stack[0] = f.value
		}
		return nil
	}
	return f.m.call(ctx, f.Function, stack)
}

// Call implements api.Function. The results it returns are valid until the function's next
// call (the caller, the http-wasm host library, reads them at once).
func (f *guestFunction) Call(ctx context.Context, params ...uint64) ([]uint64, error) {
	if len(params) != f.params {
		def := f.Function.Definition()
		return nil, fmt.Errorf("%s takes %d parameters, got %d", def.Name(), f.params, len(params))
	}
	stack := f.stack
	clear(stack)
	copy(stack, params)
	if err := f.CallWithStack(ctx, stack); err != nil {
		return nil, err
	}
	return stack[:f.results], nil
}
