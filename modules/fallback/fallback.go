// Package fallback is the site key `fallback`: the answer for requests nothing else in the
// site answered (and for static files that do not exist), optionally chosen by the Accept
// header. It is how SPA history-mode routing and JSON 404s are configured. See
// docs/static.md.
package fallback

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/modules/static/mimetype"
)

func init() {
	core.Register(core.Module{
		ID:          "http.handlers.fallback",
		Feature:     "fallback",
		Description: "fallback response for unmatched requests (SPA shell, JSON 404), chosen by Accept",
		Stage:       core.StageNone,
		SiteKeys:    []string{"fallback"},
		SiteRoles:   core.RoleRouter,
		Site:        provision,
		ConfigTypes: map[string]any{"fallback": configSchema{}},
	})
}

// RuleConfig is one response: the top level of `fallback` and each byAccept entry.
type RuleConfig struct {
	// Status is the response status (default 200; 100–599).
	Status *int `json:"status"`
	// Body is a string (sent as is) or any JSON value (sent as application/json).
	Body config.Node `json:"body"`
	// File is a file sent with the MIME type of its extension; it wins over Body.
	File string `json:"file"`
	// Headers are extra response headers; a Content-Type here overrides the computed one.
	Headers map[string]string `json:"headers"`
}

// Config is the `fallback` block.
type Config struct {
	// Status, Body, File and Headers form the default rule (see RuleConfig).
	Status  *int              `json:"status"`
	Body    config.Node       `json:"body"`
	File    string            `json:"file"`
	Headers map[string]string `json:"headers"`
	// ByAccept maps an Accept key (html, json, text, image, "*" or a literal substring) to
	// the rule for clients that send it.
	ByAccept map[string]RuleConfig `json:"byAccept"`
}

func provision(ctx *core.SiteContext) core.SiteInstance {
	node, _ := ctx.Section("fallback")
	if node == nil {
		// `fallback:` with no value (YAML null) means the same as `fallback: {}`.
		node = map[string]config.Node{}
	}
	var c Config
	path := ctx.Path("fallback")
	config.Decode(node, path, &c, ctx.Diag)
	return New(c, path, ctx.Diag, ctx.Logger)
}

// Handler answers every request with the rule its Accept header selects. It is a core.Router
// with precedence core.RouterFallback whose Route always returns it.
type Handler struct {
	rules []acceptRule // by key, without "*"
	star  *rule
	base  *rule // nil: no default rule, unmatched requests get the core's bare 404
	log   *slog.Logger
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Router = (*Handler)(nil)
)

type acceptRule struct {
	key    string
	needle string // lower-case substring looked for in Accept
	rule   *rule
}

// rule is one compiled response.
type rule struct {
	status  int
	body    []byte
	ctype   string
	file    string
	headers [][2]string
}

// New compiles c (found at path), recording problems in diag.
func New(c Config, path string, diag *config.Diagnostics, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{log: log}
	base := RuleConfig{Status: c.Status, Body: c.Body, File: c.File, Headers: c.Headers}
	// The top level is a rule of its own when it sets anything, or when there is no byAccept
	// at all (`fallback: {}` answers 200 with an empty body). With only byAccept, a request
	// no rule matches gets the bare 404 a site without fallback gives.
	if c.ByAccept == nil || c.Status != nil || c.Body != nil || c.File != "" || c.Headers != nil {
		h.base = compile(base, path, diag)
	}
	keys := make([]string, 0, len(c.ByAccept))
	for k := range c.ByAccept {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := config.Join(config.Join(path, "byAccept"), k)
		rc := c.ByAccept[k]
		if k == "*" {
			h.star = compile(rc, p, diag)
			continue
		}
		needle := acceptNeedle(k)
		if needle == "" {
			diag.Warnf(p, "an empty byAccept key matches nothing; ignored")
			continue
		}
		h.rules = append(h.rules, acceptRule{key: k, needle: needle, rule: compile(rc, p, diag)})
	}
	return h
}

// acceptNeedle maps a byAccept key to the lower-case text looked for in Accept.
func acceptNeedle(key string) string {
	switch k := strings.ToLower(strings.TrimSpace(key)); k {
	case "html":
		return "text/html"
	case "json":
		return "application/json"
	case "text":
		return "text/"
	case "image":
		return "image/"
	default:
		return k
	}
}

// compile validates one rule and renders its body once.
func compile(rc RuleConfig, path string, diag *config.Diagnostics) *rule {
	r := &rule{status: http.StatusOK, file: rc.File}
	if rc.Status != nil {
		s := *rc.Status
		switch {
		case s < 100 || s > 599:
			diag.Errorf(config.Join(path, "status"), "must be an HTTP status between 100 and 599, got %d", s)
		case s < 200:
			diag.Warnf(config.Join(path, "status"), "%d is an informational status, not a final response; clients will see it followed by an empty 200", s)
			r.status = s
		default:
			r.status = s
		}
	}
	if rc.File != "" {
		if rc.Body != nil {
			diag.Warnf(config.Join(path, "body"), "both file and body are set; file is served and body is ignored")
		}
		if fi, err := os.Stat(rc.File); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				diag.Warnf(config.Join(path, "file"), "file %q does not exist (yet); until it does, this fallback answers a bare 404", rc.File)
			} else {
				diag.Warnf(config.Join(path, "file"), "file %q: %v", rc.File, err)
			}
		} else if fi.IsDir() {
			diag.Errorf(config.Join(path, "file"), "%q is a directory, not a file", rc.File)
		}
		r.ctype = mimetype.ByName(rc.File)
	} else {
		switch b := rc.Body.(type) {
		case nil:
		case string:
			r.body = []byte(b)
			r.ctype = http.DetectContentType(r.body)
		default:
			data, err := json.Marshal(b)
			if err != nil {
				diag.Errorf(config.Join(path, "body"), "cannot be encoded as JSON: %v", err)
				break
			}
			r.body = data
			r.ctype = "application/json"
		}
	}
	names := make([]string, 0, len(rc.Headers))
	for k := range rc.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := rc.Headers[k]
		if !validHeader(k, v) {
			diag.Errorf(config.Join(config.Join(path, "headers"), k), "is not a valid header name and value")
			continue
		}
		r.headers = append(r.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	return r
}

// validHeader rejects names with separators or control characters and values with CR, LF
// or NUL.
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return !strings.ContainsAny(value, "\r\n\x00")
}

// Route implements core.Router: the fallback answers whatever reaches it.
func (h *Handler) Route(*http.Request) http.Handler { return h }

// Precedence implements core.Router.
func (h *Handler) Precedence() int { return core.RouterFallback }

// ServeHTTP answers with the selected rule, or the core's bare 404 when none applies.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rl := h.pick(r)
	if rl == nil {
		core.Error(w, r, http.StatusNotFound, "")
		return
	}
	rl.serve(w, r, h.log)
}

// pick chooses a rule: among the byAccept keys found in Accept, the one that appears
// earliest (clients list what they prefer first); ties go to the key that sorts first; then
// "*"; then the top-level rule.
func (h *Handler) pick(r *http.Request) *rule {
	if len(h.rules) > 0 {
		for _, line := range r.Header.Values("Accept") {
			best, bestAt := -1, len(line)
			for i := range h.rules {
				if at := indexFold(line, h.rules[i].needle); at >= 0 && at < bestAt {
					best, bestAt = i, at
				}
			}
			if best >= 0 {
				return h.rules[best].rule
			}
		}
	}
	if h.star != nil {
		return h.star
	}
	return h.base
}

// indexFold is strings.Index ignoring ASCII case, for a lower-case needle, without
// allocating.
func indexFold(s, needle string) int {
	n := len(needle)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return i
		}
	}
	return -1
}

// serve writes the rule's response. A file is read on every request, so a rebuilt SPA shell
// is served without a reload.
func (rl *rule) serve(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	hdr := w.Header()
	if rl.file != "" {
		f, err := os.Open(rl.file)
		if err != nil {
			log.Debug("fallback file cannot be opened", "file", rl.file, "err", err)
			core.Error(w, r, http.StatusNotFound, "")
			return
		}
		defer func() { _ = f.Close() }()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			core.Error(w, r, http.StatusNotFound, "")
			return
		}
		hdr.Set("Content-Type", rl.ctype)
		rl.setHeaders(hdr)
		if bodyAllowed(rl.status) {
			hdr.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		}
		w.WriteHeader(rl.status)
		if r.Method != http.MethodHead && bodyAllowed(rl.status) {
			_, _ = io.Copy(w, f)
		}
		return
	}
	if rl.ctype != "" {
		hdr.Set("Content-Type", rl.ctype)
	}
	rl.setHeaders(hdr)
	if bodyAllowed(rl.status) {
		hdr.Set("Content-Length", strconv.Itoa(len(rl.body)))
	}
	w.WriteHeader(rl.status)
	if r.Method != http.MethodHead && bodyAllowed(rl.status) && len(rl.body) > 0 {
		_, _ = w.Write(rl.body)
	}
}

func (rl *rule) setHeaders(hdr http.Header) {
	for _, kv := range rl.headers {
		hdr[kv[0]] = []string{kv[1]}
	}
}

// bodyAllowed reports whether a response with status may carry a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
