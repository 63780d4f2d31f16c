// Package script runs Go scripts and Traefik-style yaegi plugins as `middleware[]` entries
// (types `script` and `traefik`), interpreted by yaegi in a sandbox by default
// (docs/scripting.md).
package script

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/modules/script/api"
)

func init() {
	core.Register(core.Module{
		ID:              "http.middleware.script",
		Feature:         "script",
		Description:     "Go scripts and Traefik yaegi plugins as middleware[] entries (yaegi)",
		Stage:           core.StageScripts,
		MiddlewareTypes: []string{"script", "traefik"},
		MiddlewareEntry: build,
		ConfigTypes:     configTypes,
	})
}

// Entry is one `middleware[]` entry of type script or traefik.
type Entry struct {
	// Type is "script" or "traefik" (the core dispatched on it).
	Type string `json:"type"`
	// Path is the script (a .go file or a directory of one package) or, for traefik, the
	// plugin's directory (plugins-local/src/<module path>, holding .traefik.yml).
	Path string `json:"path" cfg:"required"`
	// Config is handed to the script (script.Config) or decoded into the plugin's
	// CreateConfig() value.
	Config config.Node `json:"config"`
	// Phase is "request" (default) or "response".
	Phase string `json:"phase"`
	// TimeoutMs is the budget of one call, next excluded; 0 runs the script on the request's
	// goroutine without a budget.
	TimeoutMs *int `json:"timeoutMs"`
	// OnError is "continue" (default: the request goes on without the script) or "deny"
	// (500) for a call that panics or runs past its budget.
	OnError string `json:"onError"`
	// Unrestricted gives the script the whole standard library instead of the sandbox.
	Unrestricted bool `json:"unrestricted"`
}

// defaultTimeoutMs is the budget of a call when timeoutMs is not set.
const defaultTimeoutMs = 50

// maxTimeoutMs bounds timeoutMs (one minute).
const maxTimeoutMs = 60000

// build is the module's MiddlewareEntry.
func build(ctx *core.SiteContext, spec core.MiddlewareSpec) core.Middleware {
	before := len(ctx.Diag.Errors())
	var cfg Entry
	config.Decode(knownKeys(ctx, spec), spec.Path, &cfg, ctx.Diag)
	if !validEntry(ctx, spec, &cfg) || len(ctx.Diag.Errors()) > before {
		return nil
	}
	e := &entry{
		name:   spec.Path,
		budget: time.Duration(defaultTimeoutMs) * time.Millisecond,
		deny:   cfg.OnError == "deny",
		log:    ctx.Logger,
		m:      newEntryMetrics(ctx.Global.Metrics, ctx.Site.Label, spec.Path),
		next:   &lateNext{},
	}
	if cfg.TimeoutMs != nil {
		e.budget = time.Duration(*cfg.TimeoutMs) * time.Millisecond
	}
	if e.budget > 0 {
		e.wd = newWatchdog(e.budget, func() { e.addStuck(1) })
		e.wd.watchStacks(e.stuck.Load, e.runaway)
	}
	raw, err := json.Marshal(cfg.Config)
	if err != nil {
		ctx.Errorf(config.Join(spec.Path, "config"), "cannot be encoded as JSON: %v", err)
		return nil
	}
	e.config = script.NewConfig(spec.Path, raw)
	if cfg.Unrestricted {
		ctx.Logger.Warn("script entry runs with the whole standard library (unrestricted: true): files, processes and the network are open to it", "entry", spec.Path, "path", cfg.Path)
	}
	pathAt := config.Join(spec.Path, "path")
	plugin := cfg.Type == "traefik" || isPluginDir(cfg.Path)
	if plugin && cfg.Phase == "response" {
		ctx.Errorf(config.Join(spec.Path, "phase"), `%s is a Traefik plugin, which wraps the whole request; "response" is for scripts`, cfg.Path)
		return nil
	}
	var ok bool
	if plugin {
		ok = e.loadPlugin(ctx, pathAt, &cfg)
	} else {
		ok = e.loadScript(ctx, pathAt, &cfg)
	}
	if !ok {
		return nil
	}
	return e
}

// knownKeys returns the entry without its unknown keys, each of which is an error: a
// misspelt `onError` or `phase` must not leave an entry that guards a site running in a
// mode its author did not write.
func knownKeys(ctx *core.SiteContext, spec core.MiddlewareSpec) map[string]config.Node {
	known := config.KnownKeys(&Entry{})
	out := make(map[string]config.Node, len(spec.Node))
	for _, k := range config.SortedKeys(spec.Node) {
		if !slices.Contains(known, k) {
			msg := fmt.Sprintf("unknown key %q", k)
			if sug := config.Suggest(k, known); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			ctx.Errorf(config.Join(spec.Path, k), "%s; known: %s", msg, strings.Join(known, ", "))
			continue
		}
		out[k] = spec.Node[k]
	}
	return out
}

// validEntry checks the keys that need no file.
func validEntry(ctx *core.SiteContext, spec core.MiddlewareSpec, cfg *Entry) bool {
	ok := true
	switch cfg.Phase {
	case "", "request":
	case "response":
		if cfg.Type == "traefik" {
			ctx.Errorf(config.Join(spec.Path, "phase"), `a traefik plugin wraps the whole request; "response" is for scripts`)
			ok = false
		}
		if cfg.OnError == "deny" {
			ctx.Errorf(config.Join(spec.Path, "onError"), `"deny" cannot apply in the response phase: the status is already chosen; use "continue" or run the check in the request phase`)
			ok = false
		}
	default:
		ctx.Errorf(config.Join(spec.Path, "phase"), `must be "request" or "response", got %q`, cfg.Phase)
		ok = false
	}
	switch cfg.OnError {
	case "", "continue", "deny":
	default:
		ctx.Errorf(config.Join(spec.Path, "onError"), `must be "continue" or "deny", got %q`, cfg.OnError)
		ok = false
	}
	if cfg.TimeoutMs != nil && (*cfg.TimeoutMs < 0 || *cfg.TimeoutMs > maxTimeoutMs) {
		ctx.Errorf(config.Join(spec.Path, "timeoutMs"), "must be between 0 and %d, got %d", maxTimeoutMs, *cfg.TimeoutMs)
		ok = false
	}
	if strings.EqualFold(filepath.Ext(cfg.Path), ".rhai") {
		ctx.Errorf(config.Join(spec.Path, "path"), "%s is a Rhai script; this version runs Go scripts (yaegi) and cannot run Rhai: port it to Go with the side-by-side guide in docs/scripting.md#porting-rhai-scripts", cfg.Path)
		ok = false
	}
	return ok
}

// isPluginDir reports whether path is a directory with a Traefik plugin manifest.
func isPluginDir(path string) bool {
	st, err := os.Stat(filepath.Join(path, manifestName))
	return err == nil && st.Mode().IsRegular()
}

// scriptOutput is where a script's fmt.Print and println (and yaegi's panic traces) go:
// the log of the site that compiled the program, at info, tagged with the script's path
// (entries with the same files share one program).
type scriptOutput struct {
	log    *slog.Logger
	script string
	dir    string // a script's directory, for the in-memory paths yaegi prints
}

// Write implements io.Writer. A write of only a newline (yaegi's println writes its line
// end separately) logs nothing.
func (o scriptOutput) Write(b []byte) (int, error) {
	msg := strings.TrimRight(string(b), "\n")
	if msg == "" {
		return len(b), nil
	}
	if o.dir != "" {
		msg = realPaths(msg, o.dir)
	}
	o.log.Info(msg, "script", o.script)
	return len(b), nil
}

// loadScript compiles (or reuses) the script and obtains its entry point.
func (e *entry) loadScript(ctx *core.SiteContext, pathAt string, cfg *Entry) bool {
	src, err := readSource(cfg.Path)
	if err != nil {
		ctx.Errorf(pathAt, "cannot read the script: %v", err)
		return false
	}
	out := scriptOutput{log: ctx.Logger, script: src.path, dir: src.dir}
	key := fmt.Sprintf("script:%s:%t", src.hash, cfg.Unrestricted)
	warnProcessHazards(ctx, pathAt, src.data, "script")
	p, err := sharedProgram(ctx, key, func() (*program, error) { return compileScript(src, cfg.Unrestricted, out) })
	if err != nil {
		ctx.Errorf(pathAt, "%v", err)
		return false
	}
	e.prog = p
	if cfg.Phase == "response" {
		return e.bindResponse(ctx, pathAt)
	}
	return e.bindRequest(ctx, pathAt)
}

// sharedProgram returns the program stored under key, compiling it when absent or stopped.
// A failed compilation is not stored, so the next reload tries again.
func sharedProgram(ctx *core.SiteContext, key string, compile func() (*program, error)) (*program, error) {
	slot := ctx.Shared.Get(key, func() any { return &programSlot{} }).(*programSlot)
	return slot.get(compile)
}

// bindRequest obtains a request-phase entry point and builds the script's handler once.
//
// The entry points, in the order they are looked up:
//
//	func New(cfg script.Config, next http.Handler) (http.Handler, error)
//	func Middleware(next http.Handler) http.Handler
func (e *entry) bindRequest(ctx *core.SiteContext, pathAt string) bool {
	p := e.prog
	var h http.Handler
	var err error
	switch {
	case p.has("New"):
		fn, ok := p.fn("New").(func(script.Config, http.Handler) (http.Handler, error))
		if !ok {
			ctx.Errorf(pathAt, "%s.New must be func(script.Config, http.Handler) (http.Handler, error), is %s", p.pkg, p.typeOf("New"))
			return false
		}
		h, err = callCtor(func() (http.Handler, error) { return fn(e.config, e.next) })
	case p.has("Middleware"):
		fn, ok := p.fn("Middleware").(func(http.Handler) http.Handler)
		if !ok {
			ctx.Errorf(pathAt, "%s.Middleware must be func(http.Handler) http.Handler, is %s", p.pkg, p.typeOf("Middleware"))
			return false
		}
		h, err = callCtor(func() (http.Handler, error) { return fn(e.next), nil })
	default:
		ctx.Errorf(pathAt, "package %s has no entry point: define New(cfg script.Config, next http.Handler) (http.Handler, error) or Middleware(next http.Handler) http.Handler (or Response for phase: response)", p.pkg)
		return false
	}
	if err == nil && h == nil {
		err = fmt.Errorf("the constructor returned a nil handler")
	}
	if err != nil {
		ctx.Errorf(pathAt, "%v", err)
		return false
	}
	e.handler = h
	return true
}

// bindResponse obtains the response-phase entry point:
//
//	func Response(r *http.Request, resp *script.Response)
func (e *entry) bindResponse(ctx *core.SiteContext, pathAt string) bool {
	p := e.prog
	if !p.has("Response") {
		ctx.Errorf(pathAt, "package %s has no Response(r *http.Request, resp *script.Response) function, which phase: response calls", p.pkg)
		return false
	}
	fn, ok := p.fn("Response").(func(*http.Request, *script.Response))
	if !ok {
		ctx.Errorf(pathAt, "%s.Response must be func(*http.Request, *script.Response), is %s", p.pkg, p.typeOf("Response"))
		return false
	}
	e.response = fn
	return true
}

// callCtor runs a script constructor, turning a panic into an error.
func callCtor(f func() (http.Handler, error)) (h http.Handler, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("the constructor panicked: %v", r)
		}
	}()
	return f()
}

var _ io.Writer = scriptOutput{}
