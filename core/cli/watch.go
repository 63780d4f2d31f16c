package cli

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/fsnotify/fsnotify"
	"github.com/knadh/koanf/providers/file"
)

// watchesConfig reports whether any site enables hotReload, which also reloads the
// configuration when one of its files changes (docs/configuration.md, "Reloads").
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

// watchConfig calls onChange (debounced) when a config file of paths changes: a file by
// koanf's file provider, which watches the file's directory so that editors that replace the
// file by renaming are seen too; a directory with fsnotify, for any change to a file it
// reads (a *.yaml, *.yml or *.json file added, changed, renamed or removed) and to a
// Kubernetes ConfigMap's "..data" link.
func watchConfig(paths []string, onChange func(), logger *slog.Logger) (stop func(), err error) {
	var mu sync.Mutex
	var timer *time.Timer
	changed := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
		timer = time.AfterFunc(configDebounce, func() {
			logger.Info("config file changed; reloading", "path", what)
			onChange()
		})
	}
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			stopAll()
			return nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			stopAll()
			return nil, err
		}
		var s func()
		if st.IsDir() {
			s, err = watchDir(abs, changed, logger)
		} else {
			s, err = watchFile(abs, changed, logger)
		}
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stopAll, nil
}

// watchFile reports changes of one config file.
func watchFile(abs string, changed func(string), logger *slog.Logger) (stop func(), err error) {
	f := file.Provider(abs)
	err = f.Watch(func(event any, err error) {
		if err != nil {
			logger.Warn("config watch", "err", err)
			return
		}
		changed(abs)
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = f.Unwatch() }, nil
}

// watchDir reports changes of the config files of a directory.
func watchDir(dir string, changed func(string), logger *slog.Logger) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if dirEventMatters(ev.Name) {
					changed(ev.Name)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if !errors.Is(err, fsnotify.ErrClosed) {
					logger.Warn("config watch", "dir", dir, "err", err)
				}
			}
		}
	}()
	return func() {
		_ = w.Close()
		<-done
	}, nil
}

// dirEventMatters reports whether a change to the entry name of a config directory can
// change the configuration: a config file (not hidden), or the "..data" link through which
// Kubernetes swaps a mounted ConfigMap's files.
func dirEventMatters(name string) bool {
	base := filepath.Base(name)
	return base == "..data" || config.IsConfigFileName(base)
}
