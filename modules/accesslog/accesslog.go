// Package accesslog writes one access-log line per request (the site key `logging`) in the
// dev, combined, common, short or json format, to stdout and, with `file`, appended to a file
// that is reopened on every reload and on SIGUSR1 (for logrotate). Process logs stay on
// log/slog; this is the request log only.
//
// The middleware sits at core.StageObserve and renders each line into a pooled buffer with
// append-style helpers (no fmt, no per-field allocation), then writes it with one call.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/skippaths"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"logging": Config{}},
		ID:          "http.observe.accesslog",
		Feature:     "accesslog",
		Description: "access logs (dev, combined, common, short, json)",
		Stage:       core.StageObserve,
		Order:       40, // innermost observer
		SiteKeys:    []string{"logging"},
		Provides:    []core.SiteValueProvider{core.LogJSON.Provide(logJSON)},
		SiteRoles:   core.RoleMiddleware | core.RoleStarter | core.RoleStopper,
		Site:        provision,
	})
}

// logger is one site's access log.
type logger struct {
	format     Format
	skip       *skippaths.Matcher
	stripQuery bool
	path       string // file path, "" for stdout only

	stdout      io.Writer
	colorStdout bool
	file        *reopener
	bufs        sync.Pool
	stopSignal  func()
	procLog     *slog.Logger
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*logger)(nil)
	_ core.Starter    = (*logger)(nil)
	_ core.Stopper    = (*logger)(nil)
)

// logJSON provides core.LogJSON: the site's access log is enabled and writes JSON lines.
func logJSON(ctx *core.SiteContext) (bool, bool) {
	var cfg Config
	if !ctx.DecodeQuietly("logging", &cfg) {
		return false, false
	}
	return cfg.Enabled && cfg.Format == FormatJSON, true
}

func provision(ctx *core.SiteContext) core.SiteInstance {
	var cfg Config
	ctx.Decode("logging", &cfg)
	if !cfg.Enabled {
		return nil
	}
	l := &logger{
		format: cfg.Format, skip: cfg.SkipPaths, stripQuery: cfg.StripQuery, path: cfg.File,
		stdout: os.Stdout, procLog: ctx.Logger, colorStdout: cfg.Format == FormatDev && isTerminal(os.Stdout),
	}
	l.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	if cfg.File != "" {
		// The file is opened in Start: validating a config creates no file. Its directory
		// must exist (as nginx -t checks).
		if fi, err := os.Stat(filepath.Dir(cfg.File)); err != nil || !fi.IsDir() {
			ctx.Errorf(ctx.Path("logging.file"), "directory %s does not exist", filepath.Dir(cfg.File))
			return nil
		}
	}
	return l
}

// Start implements core.Starter: it opens the file and reopens it on SIGUSR1 until Stop.
func (l *logger) Start(ctx context.Context) error {
	if l.path != "" {
		f, err := openLog(l.path)
		if err != nil {
			return err
		}
		l.file = newReopener(l.path, f)
		l.stopSignal = notifyReopen(func() {
			if err := l.file.reopen(); err != nil {
				l.procLog.Error("access log: reopen failed", "file", l.path, "error", err)
			}
		})
	}
	return nil
}

// Stop implements core.Stopper: it stops listening for SIGUSR1 and closes the file. The next
// generation has opened its own, so a reload is a reopen.
func (l *logger) Stop(ctx context.Context) error {
	if l.stopSignal != nil {
		l.stopSignal()
	}
	if l.file != nil {
		return l.file.close()
	}
	return nil
}

// Wrap implements core.Middleware.
func (l *logger) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.skip.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		st := core.State(r)
		if st == nil {
			// Outside the pipeline (tests of one handler): give it a state.
			var r2 *http.Request
			st, r2 = core.AcquireState(w, r, &core.Site{}, time.Now())
			defer core.ReleaseState(st)
			r, w = r2, &st.Writer
		}
		defer l.log(r, st)
		next.ServeHTTP(w, r)
	})
}

// log renders and writes the line of a finished request (also after a panic such as an
// aborted upstream body).
func (l *logger) log(r *http.Request, st *core.RequestState) {
	e := entry{r: r, st: st, end: time.Now(), stripQuery: l.stripQuery}
	bp := l.bufs.Get().(*[]byte)
	b := l.render((*bp)[:0], &e, false)
	if l.file != nil {
		_, _ = l.file.Write(b)
	}
	if l.stdout != nil {
		if l.colorStdout {
			b = l.render(b[:0], &e, true)
		}
		_, _ = l.stdout.Write(b)
	}
	if cap(b) <= 64<<10 { // do not keep a buffer grown by a huge URL
		*bp = b
		l.bufs.Put(bp)
	}
}

func (l *logger) render(b []byte, e *entry, color bool) []byte {
	switch l.format {
	case FormatJSON:
		return appendJSON(b, e)
	case FormatCombined:
		return appendCombined(b, e)
	case FormatCommon:
		return appendCommon(b, e)
	case FormatShort:
		return appendShort(b, e)
	}
	return appendDev(b, e, color)
}
