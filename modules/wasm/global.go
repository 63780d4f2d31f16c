package wasm

import (
	"context"
	"os"
	"path/filepath"

	"github.com/conduitproxy/conduit/core"
	"github.com/tetratelabs/wazero"
)

// globalConfig is the `global.wasm` section.
type globalConfig struct {
	// CacheDir is where wazero keeps compiled guests between restarts; "" means the
	// default, <user cache dir>/conduit/wasm.
	CacheDir string `json:"cacheDir"`
	// DiskCache turns the on-disk compilation cache off when false (default true).
	DiskCache *bool `json:"diskCache"`
}

// engine is what every wasm entry of one generation shares: the compilation cache (which
// itself outlives the generation, see compileCache).
type engine struct {
	cache wazero.CompilationCache
}

const engineMemoKey = "wasm.engine"

func provisionGlobal(ctx *core.GlobalContext) core.Instance {
	globalFor(ctx)
	return nil
}

// globalFor returns the generation's engine, decoding global.wasm on first use.
func globalFor(g *core.GlobalContext) *engine {
	return g.Memo(engineMemoKey, func() any {
		var c globalConfig
		g.Decode("wasm", &c)
		dir := ""
		if c.DiskCache == nil || *c.DiskCache {
			dir = c.CacheDir
			if dir == "" {
				if base, err := os.UserCacheDir(); err == nil {
					dir = filepath.Join(base, "conduit", "wasm")
				}
			}
		}
		return &engine{cache: compileCache(g, dir)}
	}).(*engine)
}

// compileCache returns the process's compilation cache for dir ("" for memory only),
// shared across reloads through g.Shared, so a guest is compiled once per content (wazero
// keys compiled code by the module's hash) and, with a directory, once per machine.
func compileCache(g *core.GlobalContext, dir string) wazero.CompilationCache {
	return g.Shared.Get("wasm.compilationCache:"+dir, func() any {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o700); err == nil {
				if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
					return c
				} else {
					g.Logger.Warn("wasm: on-disk compilation cache unavailable; compiling in memory", "dir", dir, "error", err)
				}
			} else {
				g.Logger.Warn("wasm: on-disk compilation cache unavailable; compiling in memory", "dir", dir, "error", err)
			}
		}
		return wazero.NewCompilationCache()
	}).(wazero.CompilationCache)
}

// closeWith closes c when ctx (a generation's context) is done.
func closeWith(ctx context.Context, c interface{ Close(context.Context) error }) {
	context.AfterFunc(ctx, func() { _ = c.Close(context.Background()) })
}
