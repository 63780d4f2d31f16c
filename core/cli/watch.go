package cli

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core/server"
	"github.com/knadh/koanf/providers/file"
)

// watchesConfig reports whether any site enables hotReload, which also reloads the
// configuration when its file changes (docs/configuration.md, "Reloads").
func watchesConfig(g *server.Generation) bool {
	for _, s := range g.Doc.Sites {
		switch v := s["hotReload"].(type) {
		case bool:
			if v {
				return true
			}
		case map[string]any:
			return true
		}
	}
	return false
}

// configDebounce collapses the burst of events an editor's save produces.
const configDebounce = 200 * time.Millisecond

// watchConfig calls onChange (debounced) when the config file changes. It uses koanf's file
// provider, which watches the file's directory so that editors that replace the file by
// renaming are seen too.
func watchConfig(path string, onChange func(), logger *slog.Logger) (stop func(), err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f := file.Provider(abs)
	var mu sync.Mutex
	var timer *time.Timer
	err = f.Watch(func(event any, err error) {
		if err != nil {
			logger.Warn("config watch", "err", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
		timer = time.AfterFunc(configDebounce, func() {
			logger.Info("config file changed; reloading", "path", abs)
			onChange()
		})
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = f.Unwatch() }, nil
}
