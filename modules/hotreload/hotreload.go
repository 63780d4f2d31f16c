// Package hotreload is the site's `hotReload` browser live reload for local development:
// it watches the directories the site serves files from (core.ServedDirs, which the static
// module provides) and hotReload.watch with fsnotify, and tells every open page to reload
// through Server-Sent Events at /__hot-reload__ ("data: reload"). The client script is
// served at /__hot-reload__/client.js and a <script> tag loading it is injected into HTML
// responses before </body>. Both paths are core endpoints, so they answer before any
// guard. See docs/http-shaping.md.
package hotreload

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/conduitproxy/conduit/core"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"hotReload": Config{}},
		ID:          "http.handlers.hotreload",
		Feature:     "hotreload",
		Description: "browser live reload for local development (SSE at /__hot-reload__)",
		Stage:       core.StageResponseHeaders,
		Order:       10, // before the response headers module
		SiteKeys:    []string{"hotReload"},
		SiteRoles:   core.RoleMiddleware | core.RoleEndpoints | core.RoleStarter | core.RoleStopper | core.RoleDrainer,
		Site:        provision,
	})
}

const (
	// EventsPath is the Server-Sent Events endpoint.
	EventsPath = "/__hot-reload__"
	// ClientPath serves the client script.
	ClientPath = "/__hot-reload__/client.js"
	// Debounce is how long the watcher waits after the last change before reloading, so an
	// editor's save (write, rename, chmod) or a build tool writing many files gives one
	// reload.
	Debounce = 100 * time.Millisecond
	// maxWatchedDirs bounds the directories added to the watcher.
	maxWatchedDirs = 4096
	// maxClients bounds concurrent event streams per site.
	maxClients = 256
	// keepAlive is the interval of SSE comment lines that keep idle connections open.
	keepAlive = 30 * time.Second
)

// scriptTag is what is injected into HTML. An external script (not inline) keeps working
// under a Content-Security-Policy with script-src 'self'.
const scriptTag = `<script src="` + ClientPath + `"></script>`

// clientJS reconnects on its own (EventSource does) and reloads on "data: reload".
const clientJS = `(function () {
  if (!window.EventSource) return;
  var es = new EventSource("` + EventsPath + `");
  es.onmessage = function (e) {
    if (e.data === "reload") { es.close(); window.location.reload(); }
  };
})();
`

// Instance is one site's hot reload: endpoints, injection stage and watcher.
type Instance struct {
	dirs    []string
	exts    []string
	logger  *slog.Logger
	slot    *slot
	writers sync.Pool

	mu      sync.Mutex
	clients map[chan struct{}]struct{}
	closed  chan struct{}
	once    sync.Once
	watcher *fsnotify.Watcher
	ready   chan struct{} // closed once the watcher has added its directories
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware       = (*Instance)(nil)
	_ core.EndpointProvider = (*Instance)(nil)
	_ core.Starter          = (*Instance)(nil)
	_ core.Drainer          = (*Instance)(nil)
)

// slot remembers the site's current instance across generations, so a new generation can
// end the event streams of the one it replaces (the browsers reconnect to the new one).
type slot struct {
	mu  sync.Mutex
	cur *Instance
}

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("hotReload", &c) || !c.Enabled {
		return nil
	}
	served, _ := core.ServedDirs.Get(ctx)
	dirs := slices.Concat(served, c.Watch)
	if len(dirs) == 0 {
		ctx.Warnf(ctx.Path("hotReload"), "has no effect without static directories or hotReload.watch: nothing is watched")
	}
	in := newInstance(uniqueDirs(dirs), c.Extensions, ctx.Logger)
	key := "hotreload/" + ctx.Site.Label + "/" + strconv.Itoa(ctx.Site.Port)
	in.slot = core.SharedOf(ctx.Shared, key, func() *slot { return &slot{} })
	return in
}

func newInstance(dirs, exts []string, logger *slog.Logger) *Instance {
	in := &Instance{dirs: dirs, exts: exts, logger: logger, clients: map[chan struct{}]struct{}{},
		closed: make(chan struct{}), ready: make(chan struct{})}
	in.writers.New = func() any { return &writer{} }
	return in
}

// Endpoints implements core.EndpointProvider.
func (in *Instance) Endpoints() []core.Endpoint {
	return []core.Endpoint{
		{Path: EventsPath, Handler: http.HandlerFunc(in.serveEvents)},
		{Path: ClientPath, Handler: http.HandlerFunc(serveClient)},
	}
}

// Start implements core.Starter: it ends the streams of the instance this one replaces and
// starts watching.
func (in *Instance) Start(ctx context.Context) error {
	if in.slot != nil {
		in.slot.mu.Lock()
		old := in.slot.cur
		in.slot.cur = in
		in.slot.mu.Unlock()
		if old != nil && old != in {
			old.closeStreams()
		}
	}
	if len(in.dirs) == 0 {
		close(in.ready)
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		close(in.ready)
		in.logger.Warn("hot reload: cannot watch files", "err", err)
		return nil // live reload is a development aid: never block serving
	}
	in.watcher = w
	go func() {
		in.addTree(in.dirs)
		close(in.ready)
	}()
	go in.loop(ctx, w)
	return nil
}

// Stop implements core.Stopper.
func (in *Instance) Stop(context.Context) error {
	in.closeStreams()
	if in.slot != nil {
		in.slot.mu.Lock()
		if in.slot.cur == in {
			in.slot.cur = nil
		}
		in.slot.mu.Unlock()
	}
	if in.watcher != nil {
		<-in.ready
		return in.watcher.Close()
	}
	return nil
}

// Drain implements core.Drainer: a shutdown ends the open event streams so it need not wait
// for browsers to disconnect.
func (in *Instance) Drain() { in.closeStreams() }

func (in *Instance) closeStreams() { in.once.Do(func() { close(in.closed) }) }

// addTree adds every directory under roots to the watcher, skipping hidden directories and
// node_modules.
func (in *Instance) addTree(roots []string) {
	n := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root {
					in.logger.Warn("hot reload: cannot watch directory", "dir", root, "err", err)
				}
				return nil
			}
			if !d.IsDir() {
				return nil
			}
			if p != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			if n >= maxWatchedDirs {
				return fs.SkipAll
			}
			if err := in.watcher.Add(p); err != nil {
				in.logger.Warn("hot reload: cannot watch directory", "dir", p, "err", err)
				return nil
			}
			n++
			return nil
		})
		if err != nil && !errors.Is(err, fs.SkipAll) {
			in.logger.Warn("hot reload: walking directory", "dir", root, "err", err)
		}
	}
	if n >= maxWatchedDirs {
		in.logger.Warn("hot reload: too many directories; some are not watched", "limit", maxWatchedDirs)
	}
}

func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "node_modules"
}

// loop turns file events into debounced reloads until the watcher closes.
func (in *Instance) loop(ctx context.Context, w *fsnotify.Watcher) {
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !skipDir(filepath.Base(ev.Name)) {
					in.addTree([]string{ev.Name})
					continue
				}
			}
			if !in.wanted(ev.Name) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(Debounce)
			} else {
				timer.Reset(Debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			in.broadcast()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			in.logger.Warn("hot reload: watcher", "err", err)
		case <-ctx.Done():
			return
		}
	}
}

// wanted reports whether a changed file should reload the browser.
func (in *Instance) wanted(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") {
		return false // editor swap and backup files
	}
	if len(in.exts) == 0 {
		return true
	}
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(base), "."))
	for _, e := range in.exts {
		if e == ext {
			return true
		}
	}
	return false
}

// broadcast tells every connected page to reload.
func (in *Instance) broadcast() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for ch := range in.clients {
		select {
		case ch <- struct{}{}:
		default: // a reload is already pending for this client
		}
	}
}

func (in *Instance) subscribe() (chan struct{}, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.clients) >= maxClients {
		return nil, false
	}
	ch := make(chan struct{}, 1)
	in.clients[ch] = struct{}{}
	return ch, true
}

func (in *Instance) unsubscribe(ch chan struct{}) {
	in.mu.Lock()
	delete(in.clients, ch)
	in.mu.Unlock()
}

// Clients reports how many event streams are open (for tests and status).
func (in *Instance) Clients() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.clients)
}

// serveEvents is the SSE endpoint.
func (in *Instance) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		core.Error(w, r, http.StatusMethodNotAllowed, "")
		return
	}
	ch, ok := in.subscribe()
	if !ok {
		core.Error(w, r, http.StatusServiceUnavailable, "too many hot-reload clients")
		return
	}
	defer in.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if _, err := w.Write([]byte("retry: 1000\n: connected\n\n")); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-ch:
			msg = "data: reload\n\n"
		case <-tick.C:
			msg = ": ping\n\n"
		case <-in.closed:
			return
		case <-r.Context().Done():
			return
		}
		if _, err := w.Write([]byte(msg)); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

func serveClient(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(clientJS)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(clientJS))
	}
}
