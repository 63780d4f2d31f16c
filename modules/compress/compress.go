// Package compress is the site's `compression`: gzip, brotli, zstd and deflate chosen from
// Accept-Encoding, for every response of the site (static files, proxied bodies, fallback
// and endpoint bodies alike). It sits at core.StageCompression, outside the response-header
// stage, and streams: a handler's Flush goes through the encoder to the client. See
// docs/http-shaping.md for the rules and the decisions behind them.
package compress

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/conduitproxy/conduit/core"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"compression": Config{}},
		ID:          "http.encoders.compress",
		Feature:     "compress",
		Description: "response compression: br, zstd, gzip, deflate (streamed, pooled encoders)",
		Stage:       core.StageCompression,
		SiteKeys:    []string{"compression"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
	})
}

// Middleware is one site's compression stage.
type Middleware struct {
	cfg     Config
	prefs   []int // coding indexes in server preference order
	pools   *[len(codings)]*sync.Pool
	writers sync.Pool
	bufs    sync.Pool
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Middleware)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("compression", &c) || !c.Enabled || len(c.Algorithms) == 0 {
		return nil
	}
	return New(c, ctx.Shared)
}

// New builds the stage for a decoded config. shared may be nil (a private encoder pool).
func New(c Config, shared core.Shared) *Middleware {
	if shared == nil {
		shared = core.NewSharedStore()
	}
	m := &Middleware{cfg: c, pools: encoderPools(shared, c.Level)}
	for _, a := range c.Algorithms {
		if i := codingIndex(a); i >= 0 {
			m.prefs = append(m.prefs, i)
		}
	}
	m.writers.New = func() any { return &writer{m: m} }
	return m
}

// Wrap implements core.Middleware.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead || r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		cw := m.writers.Get().(*writer)
		cw.reset(w, negotiate(r.Header["Accept-Encoding"], m.prefs))
		done := false
		defer func() {
			if done {
				cw.finish()
			} else {
				cw.abandon() // a panic (an aborted proxy body): never finish a truncated stream
			}
			cw.rw = nil
			m.writers.Put(cw)
		}()
		next.ServeHTTP(cw, r)
		done = true
	})
}

// writer states.
const (
	stPending   = iota // nothing sent by the handler yet
	stBuffering        // status recorded; holding the body until the size or type is known
	stPass             // identity: everything goes straight through
	stCompress         // bytes go through the encoder
	stHijacked         // the connection was taken over
)

// writer is the per-request response writer. It decides once, when the status and enough
// of the body are known, between identity and one coding.
type writer struct {
	m      *Middleware
	rw     http.ResponseWriter
	coding int // negotiated coding index, -1 for none
	state  int
	code   int
	buf    *[]byte
	enc    encoder
}

func (w *writer) reset(rw http.ResponseWriter, coding int) {
	w.rw, w.coding, w.state, w.code, w.buf, w.enc = rw, coding, stPending, 0, nil, nil
}

// Header implements http.ResponseWriter.
func (w *writer) Header() http.Header { return w.rw.Header() }

// WriteHeader implements http.ResponseWriter.
func (w *writer) WriteHeader(code int) {
	if w.state != stPending {
		if w.state == stPass || w.state == stCompress {
			w.rw.WriteHeader(code) // let net/http report the superfluous call
		}
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code) // 1xx interim responses go straight through
		return
	}
	w.code = code
	h := w.rw.Header()
	if !w.eligible(h) {
		w.pass()
		return
	}
	ct, hasCT := h["Content-Type"]
	if hasCT && len(ct) > 0 {
		if !w.m.cfg.typeOK(ct[0]) {
			w.pass()
			return
		}
		addVary(h)
		if w.coding < 0 {
			w.pass()
			return
		}
	} else if hasCT {
		w.pass() // Content-Type explicitly suppressed
		return
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < int64(w.m.cfg.MinBytes) {
			w.pass()
			return
		}
		if hasCT {
			w.start()
			return
		}
	}
	if hasCT && w.m.cfg.MinBytes == 0 {
		w.start()
		return
	}
	w.state = stBuffering
}

// eligible applies the rules that need neither the type nor the size.
func (w *writer) eligible(h http.Header) bool {
	switch {
	case w.code == http.StatusNoContent, w.code == http.StatusNotModified, w.code == http.StatusPartialContent,
		w.code == http.StatusSwitchingProtocols, w.code < 200:
		return false
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(ce[0], "identity")) {
		return false // never twice: the upstream or a pre-compressed sidecar already encoded it
	}
	if len(h["Content-Range"]) > 0 {
		return false
	}
	for _, cc := range h["Cache-Control"] {
		if containsToken(cc, "no-transform") {
			return false
		}
	}
	return true
}

// pass commits to identity and sends the status.
func (w *writer) pass() {
	w.state = stPass
	w.rw.WriteHeader(w.code)
}

// start commits to compression and sends the status.
func (w *writer) start() {
	h := w.rw.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h["Content-Encoding"] = encodingValues[w.coding][:1:1]
	if et := h["Etag"]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
		h["Etag"] = []string{"W/" + et[0]}
	}
	w.enc = w.m.pools[w.coding].Get().(encoder)
	w.enc.Reset(w.rw)
	w.state = stCompress
	w.rw.WriteHeader(w.code)
}

// commit decides a buffered response. final is true when the handler has returned (the
// body is complete); otherwise the handler flushed, and a streamed body is compressed
// whatever its size so far (as Caddy does).
func (w *writer) commit(final bool) error {
	h := w.rw.Header()
	var body []byte
	if w.buf != nil {
		body = *w.buf
	}
	if _, has := h["Content-Type"]; !has {
		h["Content-Type"] = []string{http.DetectContentType(body)} // what net/http would send
	}
	ok := w.m.cfg.typeOK(h.Get("Content-Type"))
	if ok {
		addVary(h)
	}
	if ok && w.coding >= 0 && (!final || len(body) >= w.m.cfg.MinBytes) {
		w.start()
	} else {
		if final && len(h["Trailer"]) == 0 {
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
		}
		w.pass()
	}
	var err error
	if len(body) > 0 {
		_, err = w.write(body)
	}
	w.releaseBuf()
	return err
}

// Write implements http.ResponseWriter.
func (w *writer) Write(p []byte) (int, error) {
	if w.state == stPending {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == stBuffering {
		if w.buf == nil {
			w.buf = w.m.getBuf()
		}
		*w.buf = append(*w.buf, p...)
		threshold := w.m.cfg.MinBytes
		if _, has := w.rw.Header()["Content-Type"]; !has && threshold < 512 {
			threshold = 512 // enough to sniff the missing Content-Type
		}
		if len(*w.buf) >= threshold {
			if err := w.commit(false); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	return w.write(p)
}

func (w *writer) write(p []byte) (int, error) {
	switch w.state {
	case stCompress:
		return w.enc.Write(p)
	case stHijacked:
		return 0, http.ErrHijacked
	default:
		return w.rw.Write(p)
	}
}

// FlushError flushes buffered and encoded bytes through to the client.
func (w *writer) FlushError() error {
	switch w.state {
	case stPending:
		w.WriteHeader(http.StatusOK)
		if w.state == stBuffering {
			if err := w.commit(false); err != nil {
				return err
			}
		}
	case stBuffering:
		if err := w.commit(false); err != nil {
			return err
		}
	case stHijacked:
		return http.ErrHijacked
	}
	if w.state == stCompress {
		if err := w.enc.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.rw).Flush()
}

// Flush implements http.Flusher.
func (w *writer) Flush() { _ = w.FlushError() }

// Hijack implements http.Hijacker.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.state = stHijacked
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the connection's writer (deadlines).
func (w *writer) Unwrap() http.ResponseWriter { return w.rw }

// finish completes the response after the handler returned normally.
func (w *writer) finish() {
	switch w.state {
	case stBuffering:
		_ = w.commit(true)
	case stCompress:
		_ = w.enc.Close()
		w.releaseEnc()
	}
	w.releaseBuf()
}

// abandon releases resources after a panic without completing the stream.
func (w *writer) abandon() {
	if w.enc != nil {
		w.releaseEnc()
	}
	w.releaseBuf()
}

func (w *writer) releaseEnc() {
	w.enc.Reset(discard{})
	w.m.pools[w.coding].Put(w.enc)
	w.enc = nil
}

func (w *writer) releaseBuf() {
	if w.buf != nil {
		if cap(*w.buf) <= 256<<10 {
			*w.buf = (*w.buf)[:0]
			w.m.bufs.Put(w.buf)
		}
		w.buf = nil
	}
}

func (m *Middleware) getBuf() *[]byte {
	if b, ok := m.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, min(max(m.cfg.MinBytes, 512), 64<<10))
	return &b
}

// discard is where a pooled encoder points while idle, so it keeps no response alive.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// addVary adds Accept-Encoding to Vary unless it (or "*") is already there.
func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		if containsToken(v, "Accept-Encoding") || containsToken(v, "*") {
			return
		}
	}
	if len(h["Vary"]) == 0 {
		h["Vary"] = varyValue[:1:1] // shared, capacity 1: an append elsewhere copies it
		return
	}
	h["Vary"] = append(h["Vary"], "Accept-Encoding")
}

// Shared header values, so the common paths do not allocate.
var (
	varyValue      = []string{"Accept-Encoding"}
	encodingValues = [len(codings)][]string{{"br"}, {"zstd"}, {"gzip"}, {"deflate"}}
)

// containsToken reports whether a comma-separated header value holds token
// (case-insensitive; parameters after '=' are part of the item and never match).
func containsToken(v, token string) bool {
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}
