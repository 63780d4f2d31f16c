package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/conduitproxy/conduit/core"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// conduitEntry is a `middleware[]` entry running a guest of the conduit ABI.
type conduitEntry struct {
	spec     *entrySpec
	logger   *slog.Logger
	rt       *guestRuntime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig
	export   string         // on_request or on_response, by the entry's phase
	pool     chan *instance // idle instances (instances: reuse or reset)
	snap     *snapshot      // instances: reset
	// constant: the export's body is at most a constant, rc (analysis.go), so it is not
	// called and no instance is used.
	constant bool
	rc       int32
	calls    sync.Pool // idle request-phase calls (newCall)
	// names maps header names the guest gave, as it gave them, to their canonical form,
	// for the names that passed call.headerName's checks (at most maxNames; copied on
	// write, so guest calls read it without a lock).
	names   atomic.Pointer[map[string]string]
	namesMu sync.Mutex
}

// maxNames bounds the header names an entry remembers.
const maxNames = 64

// rememberName adds name (valid, with its canonical form canon) to e.names.
func (e *conduitEntry) rememberName(name, canon string) {
	e.namesMu.Lock()
	defer e.namesMu.Unlock()
	old := *e.names.Load()
	if len(old) >= maxNames {
		return
	}
	m := make(map[string]string, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[name] = canon
	e.names.Store(&m)
}

var (
	_ core.Middleware    = (*conduitEntry)(nil)
	_ core.ResponsePhase = (*conduitEntry)(nil)
)

// instance is one instance of the guest with its entry point, ready to call.
type instance struct {
	m     *guestModule
	fn    api.Function // the export itself: calls go through m.call
	stack [1]uint64    // on_response's argument in, the result out
	// globals are the globals instances: reset restores (snapshot.globals), found on the
	// instance's first release.
	globals []api.MutableGlobal
}

// Exports of a conduit-ABI guest.
const (
	exportOnRequest  = "on_request"
	exportOnResponse = "on_response"
)

// poolSize bounds the idle instances an entry keeps with `instances: reuse`.
const poolSize = 64

// newConduitEntry prepares a conduit-ABI guest compiled in rt: the host module, WASI when
// the guest imports it, and a check of its exports.
//
// With `instances: reset`, cm must be compiled from exportGlobals' code and globalNames be
// the names it returned. facts are analyse's of the guest as written.
func newConduitEntry(ctx *core.SiteContext, rt *guestRuntime, cm wazero.CompiledModule, es *entrySpec, globalNames []string, facts guestFacts) (*conduitEntry, error) {
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return nil, errors.New("the guest does not export its memory as \"memory\"")
	}
	exports := cm.ExportedFunctions()
	want, sig := exportOnRequest, "() -> i32"
	if es.response {
		want, sig = exportOnResponse, "(i32) -> i32"
	}
	def, ok := exports[want]
	if !ok {
		return nil, fmt.Errorf("the guest does not export %s%s", want, sig)
	}
	wantParams := 0
	if es.response {
		wantParams = 1
	}
	if len(def.ParamTypes()) != wantParams || len(def.ResultTypes()) != 1 || def.ResultTypes()[0] != api.ValueTypeI32 ||
		(wantParams == 1 && def.ParamTypes()[0] != api.ValueTypeI32) {
		return nil, fmt.Errorf("the guest exports %s with the wrong signature; want %s", want, sig)
	}
	bg := context.Background()
	if err := instantiateConduitHost(bg, rt, cm); err != nil {
		return nil, err
	}
	if importsModule(cm, wasi_snapshot_preview1.ModuleName) {
		if _, err := wasi_snapshot_preview1.Instantiate(bg, rt); err != nil {
			return nil, fmt.Errorf("instantiating WASI: %w", err)
		}
	}
	e := &conduitEntry{spec: es, logger: ctx.Logger, rt: rt, compiled: cm, modCfg: moduleConfig(es), export: want}
	e.names.Store(&map[string]string{})
	if v, ok := facts.consts[want]; ok {
		e.constant, e.rc = true, api.DecodeI32(v)
	}
	if es.instances != instancesFresh {
		e.pool = make(chan *instance, poolSize)
	}
	// Instantiate once now, so a guest that cannot start (a memory larger than the limit,
	// a trapping start function) is reported when the configuration loads.
	in, err := e.instantiate(bg)
	if err != nil {
		return nil, err
	}
	if es.instances == instancesReset {
		if e.snap, err = takeSnapshot(in.m, globalNames, !facts.pureMemory); err != nil {
			_ = in.m.Close(bg)
			return nil, fmt.Errorf("instances: reset: %w", err)
		}
	}
	e.release(in, true)
	return e, nil
}

// importsModule reports whether cm imports a function from module name.
func importsModule(cm wazero.CompiledModule, name string) bool {
	for _, def := range cm.ImportedFunctions() {
		if m, _, _ := def.Import(); m == name {
			return true
		}
	}
	return false
}

// Close closes the entry's runtime (its instances, compiled modules and watchdog) when its
// generation is retired.
func (e *conduitEntry) Close(ctx context.Context) error { return e.rt.Close(ctx) }

// ResponsePhase implements core.ResponsePhase.
func (e *conduitEntry) ResponsePhase() bool { return e.spec.response }

// instantiate starts a new instance of the guest.
func (e *conduitEntry) instantiate(ctx context.Context) (*instance, error) {
	m, err := e.rt.InstantiateModule(ctx, e.compiled, e.modCfg)
	if err != nil {
		return nil, fmt.Errorf("instantiating the guest: %w", err)
	}
	gm := m.(*guestModule)
	return &instance{m: gm, fn: gm.Module.ExportedFunction(e.export)}, nil
}

// acquire returns an instance: an idle one with `instances: reset` or `reuse`, else a new
// one.
func (e *conduitEntry) acquire(ctx context.Context) (*instance, error) {
	if e.pool != nil {
		select {
		case in := <-e.pool:
			return in, nil
		default:
		}
	}
	return e.instantiate(ctx)
}

// release keeps in for the next request (reset or reuse, and the call went well; reset
// restores it first) or closes it.
func (e *conduitEntry) release(in *instance, ok bool) {
	if ok && e.snap != nil {
		if in.globals == nil {
			in.globals, ok = e.snap.globals(in.m)
		}
		ok = ok && e.snap.restore(in.m, in.globals)
	}
	if ok && e.pool != nil {
		select {
		case e.pool <- in:
			return
		default:
		}
	}
	_ = in.m.Close(context.Background())
}

// invoke runs the entry's export for c; arg is on_response's status (ignored by
// on_request).
func (e *conduitEntry) invoke(c *call, arg uint64) (int32, error) {
	if e.constant {
		return e.rc, nil
	}
	in, err := e.acquire(c)
	if err != nil {
		return 0, err
	}
	in.stack[0] = arg
	err = in.m.call(c, in.fn, in.stack[:])
	rc := api.DecodeI32(in.stack[0])
	e.release(in, err == nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", e.export, err)
	}
	return rc, nil
}

// Wrap implements core.Middleware.
func (e *conduitEntry) Wrap(next http.Handler) http.Handler {
	if e.spec.response {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &responseWriter{ResponseWriter: w, e: e, r: r}
			next.ServeHTTP(rw, r)
			rw.finish()
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serveRequest(w, r, next) })
}

// serveRequest runs on_request, then answers for the guest or passes the request on.
func (e *conduitEntry) serveRequest(w http.ResponseWriter, r *http.Request, next http.Handler) {
	c := newCall(e, r)
	rc, err := e.invoke(c, 0)
	if err != nil {
		c.free()
		e.failed(err)
		if e.spec.deny {
			core.Error(w, r, http.StatusInternalServerError, "wasm middleware failed")
			return
		}
		next.ServeHTTP(w, r)
		return
	}
	switch {
	case c.redirected:
		h := w.Header()
		for k, vv := range c.abortHdr {
			h[k] = vv
		}
		h.Set("Location", c.redirect)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		c.free()
		writeBody(w, r, http.StatusFound, []byte("Redirecting..."))
	case rc != 0:
		status := c.abortStatus
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if status < 200 {
			e.logger.Warn("wasm: guest set an informational status as its answer; answering 500", "status", status, "guest", e.spec.file)
			status = http.StatusInternalServerError
		}
		h := w.Header()
		for k, vv := range c.abortHdr {
			h[k] = vv
		}
		if len(c.body) > 0 && h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
		writeBody(w, r, status, c.body)
		c.free()
	default:
		for _, op := range c.reqOps {
			if op.remove {
				r.Header.Del(op.name)
			} else {
				r.Header[op.name] = []string{op.value}
			}
		}
		c.free()
		next.ServeHTTP(w, r)
	}
}

// failed logs a guest failure.
func (e *conduitEntry) failed(err error) {
	action := "the request passes (onError: allow)"
	if e.spec.deny {
		action = "answering 500 (onError: deny)"
	}
	e.logger.Warn("wasm: guest failed; "+action, "guest", e.spec.file, "error", err)
}

// writeBody answers status with body and its Content-Length (no body for HEAD and the
// statuses that have none).
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	if !bodyAllowed(status) {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead && len(body) > 0 {
		_, _ = w.Write(body)
	}
}

// bodyAllowed reports whether a response of status may carry a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
