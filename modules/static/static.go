// Package static is Conduit's static file server: the site keys `static` and
// `staticOptions`, and the `static` target of routes[] entries.
//
// Every configured directory is opened once per generation as an os.Root, so no request
// path and no symlink can reach a file outside it. See docs/static.md for the behaviour and
// the decisions behind it.
package static

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/router"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: configTypes,
		ID:          "http.handlers.static",
		Feature:     "static",
		Description: "static files: directories, prefix maps, pre-compressed sidecars, ranges, conditional GET",
		Stage:       core.StageNone,
		SiteKeys:    []string{"static", "staticOptions"},
		HandlerKeys: []string{"static"},
		SiteRoles:   core.RoleRouter | core.RoleRouteCounter | core.RoleStopper,
		Site:        provisionSite,
		Handler:     provisionHandler,
		Provides:    []core.SiteValueProvider{core.ServedDirs.Provide(servedDirs)},
	})
}

// servedDirs provides core.ServedDirs: the directories of the site's `static` and of the
// `static` targets of its routes[] entries, as configured, in file order (a prefix map's
// directories in the order of its prefixes). Problems are left to provisionSite and
// provisionHandler, which report them.
func servedDirs(ctx *core.SiteContext) ([]string, bool) {
	var out []string
	add := func(d Dirs) {
		out = append(out, d.List...)
		for _, prefix := range sortedPrefixes(d.Prefixes) {
			out = append(out, d.Prefixes[prefix]...)
		}
	}
	var site Dirs
	if ctx.DecodeQuietly("static", &site) {
		add(site)
	}
	for _, s := range ctx.HandlerSections("static") {
		var d Dirs
		config.Decode(s.Node, s.Path, &d, &config.Diagnostics{})
		add(d)
	}
	return out, len(out) > 0
}

// provisionSite builds the site-level static router.
func provisionSite(ctx *core.SiteContext) core.SiteInstance {
	var o Options
	ctx.Decode("staticOptions", &o)
	opts := resolveOptions(o, ctx.Path("staticOptions"), ctx.Diag)
	node, ok := ctx.Section("static")
	if !ok {
		if _, routes := ctx.Section("routes"); !routes {
			ctx.Warnf(ctx.Path("staticOptions"), "staticOptions has no effect without static")
		}
		return nil
	}
	var dirs Dirs
	config.Decode(node, ctx.Path("static"), &dirs, ctx.Diag)
	return newFileServer(dirs, opts, ctx.Path("static"), ctx.Diag, ctx.NotFound())
}

// provisionHandler builds the handler of a routes[] entry's `static` target. The site's
// staticOptions apply to it too (they are diagnosed once, by the site instance). The
// directories are closed when the generation's context ends.
func provisionHandler(ctx *core.SiteContext, _ string, node any, path string, _ core.HandlerOptions) http.Handler {
	// staticOptions is diagnosed once, by provisionSite (which runs whenever the key is
	// present); here its problems go to a scratch list so they are not reported twice.
	var o Options
	ctx.DecodeQuietly("staticOptions", &o)
	opts := resolveOptions(o, ctx.Path("staticOptions"), &config.Diagnostics{})
	var dirs Dirs
	config.Decode(node, path, &dirs, ctx.Diag)
	fsrv := newFileServer(dirs, opts, path, ctx.Diag, ctx.NotFound())
	context.AfterFunc(ctx, func() { _ = fsrv.Stop(context.Background()) })
	return fsrv
}

// FileServer serves one `static` value. As a site instance it is a core.Router (precedence
// core.RouterStatic) and a core.Stopper; as an http.Handler (a routes[] target) it answers
// every request, passing those it has no file for to the site's not-found chain.
type FileServer struct {
	opts     *settings
	single   *mount // the string and array forms
	table    router.PrefixTable[*mount]
	roots    []*root
	notFound http.Handler
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Router       = (*FileServer)(nil)
	_ core.RouteCounter = (*FileServer)(nil)
	_ core.Stopper      = (*FileServer)(nil)
)

// newFileServer builds a file server for dirs. path is the diagnostic path of the `static` value;
// directories that do not exist yet are warned about in diag and opened when they appear.
// notFound answers requests for which no file exists.
func newFileServer(dirs Dirs, opts *settings, path string, diag *config.Diagnostics, notFound http.Handler) *FileServer {
	if opts == nil {
		opts = resolveOptions(Options{}, "", diag)
	}
	if notFound == nil {
		notFound = http.NotFoundHandler()
	}
	s := &FileServer{opts: opts, notFound: notFound}
	newRoots := func(list []string, p string, indexed bool) []*root {
		out := make([]*root, 0, len(list))
		for i, dir := range list {
			dp := p
			if indexed {
				dp = config.Index(p, i)
			}
			rt := openRoot(dir, dp, diag)
			out = append(out, rt)
			s.roots = append(s.roots, rt)
		}
		return out
	}
	if dirs.Prefixes == nil {
		s.single = &mount{srv: s, roots: newRoots(dirs.List, path, len(dirs.List) > 1)}
		return s
	}
	for _, prefix := range sortedPrefixes(dirs.Prefixes) {
		list := dirs.Prefixes[prefix]
		p := config.Join(path, prefix)
		m := &mount{srv: s, strip: strings.TrimSuffix(prefix, "/"), roots: newRoots(list, p, len(list) > 1)}
		s.table.Add(prefix, m)
	}
	return s
}

func sortedPrefixes(m map[string][]string) []string {
	n := make(map[string]config.Node, len(m))
	for k := range m {
		n[k] = nil
	}
	return config.SortedKeys(n)
}

// Route implements core.Router: the mount whose prefix covers the path, or nil. It does not
// allocate.
func (s *FileServer) Route(r *http.Request) http.Handler {
	if s.single != nil {
		return s.single
	}
	if _, m, ok := s.table.Lookup(r.URL.Path); ok {
		return m
	}
	return nil
}

// Precedence implements core.Router.
func (s *FileServer) Precedence() int { return core.RouterStatic }

// ServeHTTP serves r from the mount that covers it, or passes it to the not-found chain.
func (s *FileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.Route(r); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	s.notFound.ServeHTTP(w, r)
}

// RouteCount implements core.RouteCounter: one route per prefix (one for the other forms).
func (s *FileServer) RouteCount() int {
	if s.single != nil {
		return 1
	}
	return s.table.Len()
}

// Stop implements core.Stopper: it closes every directory. Requests still running get "not
// found" from then on.
func (s *FileServer) Stop(context.Context) error {
	var errs []error
	for _, rt := range s.roots {
		if err := rt.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// root is one configured directory, opened once per generation. A directory missing at
// provision is opened on first use (at most once per retryInterval), so a build that creates
// ./dist after Conduit starts is picked up without a reload.
type root struct {
	dir     string
	r       atomic.Pointer[os.Root]
	stopped atomic.Bool
	lastTry atomic.Int64 // unix nanos of the last failed open
}

const retryInterval = time.Second

// openRoot opens dir and records a warning at path when it is missing (it may be created
// later, for example by a build that runs after `conduit validate`) or an error when it is
// not a directory.
func openRoot(dir, path string, diag *config.Diagnostics) *root {
	rt := &root{dir: dir}
	r, err := os.OpenRoot(dir)
	switch {
	case err == nil:
		rt.r.Store(r)
	case errors.Is(err, fs.ErrNotExist):
		diag.Warnf(path, "directory %q does not exist (yet); its requests go to the fallback until it is created", dir)
	default:
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			diag.Errorf(path, "%q is not a directory", dir)
		} else {
			diag.Warnf(path, "directory %q cannot be opened: %v", dir, err)
		}
	}
	return rt
}

// get returns the open root, opening it now if it was missing; nil when it is still missing
// or the instance is stopped.
func (rt *root) get() *os.Root {
	if r := rt.r.Load(); r != nil {
		return r
	}
	if rt.stopped.Load() {
		return nil
	}
	now := time.Now().UnixNano()
	last := rt.lastTry.Load()
	if now-last < int64(retryInterval) || !rt.lastTry.CompareAndSwap(last, now) {
		return nil
	}
	r, err := os.OpenRoot(rt.dir)
	if err != nil {
		return nil
	}
	if !rt.r.CompareAndSwap(nil, r) {
		_ = r.Close()
		return rt.r.Load()
	}
	if rt.stopped.Load() {
		if rt.r.CompareAndSwap(r, nil) {
			_ = r.Close()
		}
		return nil
	}
	return r
}

// close marks the root stopped and closes it; the atomic swap makes it close at most once.
func (rt *root) close() error {
	rt.stopped.Store(true)
	if r := rt.r.Swap(nil); r != nil {
		if err := r.Close(); err != nil {
			return fmt.Errorf("close static directory %q: %w", rt.dir, err)
		}
	}
	return nil
}
