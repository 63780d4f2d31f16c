package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/conduitproxy/conduit/core"
	"github.com/tetratelabs/wazero"
)

// moduleConfig is how a guest instance starts: anonymous (so a runtime can hold many),
// no start functions run by wazero (guestRuntime runs the module's start function, `_start`
// and the reactor initialiser `_initialize` under the watchdog), real clocks and a
// cryptographic random source, no arguments, no standard streams, and only the
// environment variables and read-only directories the entry lists.
func moduleConfig(es *entrySpec) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions().
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

// build instruments and compiles an entry's guest and prepares the middleware of its ABI.
// What it creates (the runtimes, their compiled modules and watchdogs) is closed when the
// generation is retired.
func build(ctx *core.SiteContext, g *engine, es *entrySpec) (core.Middleware, error) {
	bg := context.Background()
	code, err := instrument(es.code)
	if err != nil {
		// Name wazero's reason when it refuses the guest too: that is the clearer one.
		rt := wazero.NewRuntime(bg)
		defer rt.Close(bg)
		if _, cerr := compile(bg, rt, es.code); cerr != nil {
			return nil, fmt.Errorf("compiling %s: %w", es.file, cerr)
		}
		return nil, fmt.Errorf("preparing %s for timeoutMs: %w", es.file, err)
	}
	facts := analyse(es.code)
	rt := newGuestRuntime(g.cache, es, facts.consts)
	fail := func(err error) (core.Middleware, error) {
		_ = rt.Close(bg)
		return nil, err
	}
	cm, err := rt.CompileModule(bg, code)
	if err != nil {
		return fail(fmt.Errorf("compiling %s: %w", es.file, err))
	}
	abi := es.abi
	if abi == "" {
		abi = detectABI(cm)
	}
	switch abi {
	case abiConduit:
		var names []string
		if es.instances == instancesReset {
			reset, n, err := exportGlobals(code)
			if err == nil && len(n) > 0 {
				cm, err = rt.CompileModule(bg, reset)
			}
			if err != nil {
				return fail(fmt.Errorf("%s: preparing instances: reset: %w (instances: fresh does not need it)", es.file, err))
			}
			names = n
		}
		e, err := newConduitEntry(ctx, rt, cm, es, names, facts)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", es.file, err))
		}
		closeWith(ctx, e)
		return e, nil
	case abiHTTPWasm:
		if es.response {
			return fail(fmt.Errorf("%w: an http-wasm guest handles the request and the response itself: remove phase: response", errEntry))
		}
		// The pool compiles code in its own runtime; rt holds the compiled module until
		// then, so that compilation is a cache hit.
		h, err := newHTTPWasmEntry(ctx, g, es, code, facts)
		_ = rt.Close(bg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", es.file, err)
		}
		closeWith(ctx, h)
		return h, nil
	}
	return fail(fmt.Errorf("%s: the guest imports neither the conduit nor the http_handler host module and exports neither on_request nor handle_request; set abi", es.file))
}
