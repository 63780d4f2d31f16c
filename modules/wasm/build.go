package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/conduitproxy/conduit/core"
	"github.com/tetratelabs/wazero"
)

// newRuntime returns a runtime with the entry's limits: its memory cap, calls that stop
// when their context is done (the timeout), and the shared compilation cache.
func newRuntime(cache wazero.CompilationCache, es *entrySpec) wazero.Runtime {
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(es.memPages).
		WithCloseOnContextDone(true)
	return wazero.NewRuntimeWithConfig(context.Background(), cfg)
}

// moduleConfig is how a guest instance starts: anonymous (so a runtime can hold many),
// its reactor initialiser `_initialize` run when it has one, real clocks and a
// cryptographic random source, no arguments, no standard streams, and only the
// environment variables and read-only directories the entry lists.
func moduleConfig(es *entrySpec) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
	for _, kv := range es.env {
		mc = mc.WithEnv(kv[0], kv[1])
	}
	if len(es.mounts) > 0 {
		fc := wazero.NewFSConfig()
		for _, m := range es.mounts {
			fc = fc.WithReadOnlyDirMount(m[0], m[1])
		}
		mc = mc.WithFSConfig(fc)
	}
	return mc
}

// detectABI names the ABI of a compiled guest from its imports and exports.
func detectABI(cm wazero.CompiledModule) string {
	switch {
	case importsModule(cm, conduitModule):
		return abiConduit
	case importsModule(cm, "http_handler"):
		return abiHTTPWasm
	}
	exports := cm.ExportedFunctions()
	if _, ok := exports[exportOnRequest]; ok {
		return abiConduit
	}
	if _, ok := exports[exportOnResponse]; ok {
		return abiConduit
	}
	if _, ok := exports["handle_request"]; ok {
		return abiHTTPWasm
	}
	return ""
}

// errEntry marks a build error that is the entry's mistake, not the guest's: an error
// whatever onError says.
var errEntry = errors.New("invalid entry")

// build compiles an entry's guest and prepares the middleware of its ABI. The runtimes it
// creates are closed when the generation is retired.
func build(ctx *core.SiteContext, g *engine, es *entrySpec) (core.Middleware, error) {
	rt := newRuntime(g.cache, es)
	cm, err := rt.CompileModule(context.Background(), es.code)
	if err != nil {
		_ = rt.Close(context.Background())
		return nil, fmt.Errorf("compiling %s: %w", es.file, err)
	}
	abi := es.abi
	if abi == "" {
		abi = detectABI(cm)
	}
	switch abi {
	case abiConduit:
		var names []string
		if es.instances == instancesReset {
			code, n, err := exportGlobals(es.code)
			if err == nil && len(n) > 0 {
				cm, err = rt.CompileModule(context.Background(), code)
			}
			if err != nil {
				_ = rt.Close(context.Background())
				return nil, fmt.Errorf("%s: preparing instances: reset: %w (instances: fresh does not need it)", es.file, err)
			}
			names = n
		}
		e, err := newConduitEntry(ctx, rt, cm, es, names)
		if err != nil {
			_ = rt.Close(context.Background())
			return nil, fmt.Errorf("%s: %w", es.file, err)
		}
		closeWith(ctx, rt)
		return e, nil
	case abiHTTPWasm:
		_ = rt.Close(context.Background())
		if es.response {
			return nil, fmt.Errorf("%w: an http-wasm guest handles the request and the response itself: remove phase: response", errEntry)
		}
		h, err := newHTTPWasmEntry(ctx, g, es)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", es.file, err)
		}
		closeWith(ctx, h)
		return h, nil
	}
	_ = rt.Close(context.Background())
	return nil, fmt.Errorf("%s: the guest imports neither the conduit nor the http_handler host module and exports neither on_request nor handle_request; set abi", es.file)
}
