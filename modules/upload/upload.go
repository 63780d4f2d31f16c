// Package upload is the site's `upload` block (feature upload, full bundle): multipart file
// uploads to a directory. POST requests to `path` (and below it) are answered at the upload
// router precedence (core.RouterUpload, before routes[]), after every guard, so auth, the
// IP filter, rate limits and body limits apply. Each file streams to a temporary file in
// `dir` and is renamed to a UUID v4 name that keeps a sanitised extension; the client's file
// name never reaches a path. The type is checked by content sniffing as well as by the
// declared Content-Type. See docs/upload.md.
package upload

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/router"
)

func init() {
	core.Register(core.Module{
		ID:          "http.handlers.upload",
		Feature:     "upload",
		Description: "multipart file uploads to a directory, under UUID names, with size, count and type limits",
		SiteKeys:    []string{"upload"},
		SiteRoles:   core.RoleRouter | core.RoleStarter,
		Site:        provision,
		ConfigTypes: map[string]any{"upload": Config{}},
	})
}

// Config is the site's `upload` block.
type Config struct {
	// Path is the URL path uploads are posted to; it matches itself and everything below
	// it (required).
	Path string `json:"path" cfg:"required" doc:"the URL path uploads are posted to; it matches itself and everything below it (absolute, no query, glob or dot segment)"`
	// Dir is the directory files are stored in, created when absent (required).
	Dir string `json:"dir" cfg:"required" doc:"the directory files are stored in, created when absent"`
	// MaxFileSizeBytes caps each file. Default 100 MiB; 0 means no cap.
	MaxFileSizeBytes *uint64 `json:"maxFileSizeBytes" default:"104857600" doc:"caps each file; 0 means no cap"`
	// MaxTotalSizeBytes caps the files of one request together; 0 (default) means only
	// MaxFiles × MaxFileSizeBytes.
	MaxTotalSizeBytes uint64 `json:"maxTotalSizeBytes" default:"0" doc:"caps the files of one request together; 0 means only maxFiles × maxFileSizeBytes"`
	// MaxFiles caps the files of one request. Default 20.
	MaxFiles *uint32 `json:"maxFiles" default:"20" minimum:"1" doc:"caps the files of one request"`
	// AllowedMimeTypes lists the accepted types ("image/png", "image/*"); empty accepts all.
	AllowedMimeTypes []string `json:"allowedMimeTypes" doc:"the accepted media types (image/png, image/*); empty accepts all"`
	// FieldName is the form field that carries the files. Default "file".
	FieldName string `json:"fieldName" default:"\"file\"" doc:"the form field that carries the files"`
}

// Defaults of the upload block.
const (
	DefaultMaxFileSize = 100 << 20
	DefaultMaxFiles    = 20
	DefaultFieldName   = "file"
	// MaxFieldBytes bounds the other (non-file) fields of one request together.
	MaxFieldBytes = 1 << 20
	// MaxParts bounds the parts of one request.
	MaxParts = 1000
)

// uploader is the instance of one site's upload block.
type uploader struct {
	path      string
	dir       string
	maxFile   int64 // 0: none
	maxTotal  int64 // 0: none
	maxFiles  int
	allowed   []string // lower-case types; "type/*" for a wildcard
	fieldName string
	handler   http.Handler
}

var (
	_ core.Router  = (*uploader)(nil)
	_ core.Starter = (*uploader)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("upload", &c) {
		return nil
	}
	path := ctx.Path("upload")
	u := &uploader{
		dir:       c.Dir,
		maxFile:   DefaultMaxFileSize,
		maxTotal:  int64(min(c.MaxTotalSizeBytes, 1<<62)),
		maxFiles:  DefaultMaxFiles,
		fieldName: DefaultFieldName,
	}
	if c.MaxFileSizeBytes != nil {
		u.maxFile = int64(min(*c.MaxFileSizeBytes, 1<<62))
	}
	if c.MaxFiles != nil {
		if *c.MaxFiles == 0 {
			ctx.Errorf(config.Join(path, "maxFiles"), "must be at least 1")
		}
		u.maxFiles = int(*c.MaxFiles)
	}
	if c.FieldName != "" {
		u.fieldName = c.FieldName
	}
	switch p := c.Path; {
	case c.Path == "" && c.Dir == "":
	case !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#*") || strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		ctx.Errorf(config.Join(path, "path"), "must be an absolute URL path such as /upload (no query, glob or dot segment), got %q", p)
	default:
		u.path = strings.TrimSuffix(p, "/")
		if u.path == "" {
			u.path = "/"
		}
	}
	if c.Dir != "" {
		if st, err := os.Stat(c.Dir); err == nil && !st.IsDir() {
			ctx.Errorf(config.Join(path, "dir"), "%s exists and is not a directory", c.Dir)
		}
	}
	for i, t := range c.AllowedMimeTypes {
		mt, ok := parseAllowed(t)
		if !ok {
			ctx.Errorf(config.Index(config.Join(path, "allowedMimeTypes"), i), "must be a media type such as image/png or image/*, got %q", t)
			continue
		}
		u.allowed = append(u.allowed, mt)
	}
	u.handler = http.HandlerFunc(u.serve)
	return u
}

// parseAllowed returns an allowedMimeTypes entry in lower case: "type/subtype" or "type/*".
func parseAllowed(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || !core.IsToken(typ) || (sub != "*" && !core.IsToken(sub)) || typ == "*" {
		return "", false
	}
	return s, true
}

// Start implements core.Starter: it creates the directory when absent.
func (u *uploader) Start(context.Context) error {
	if err := os.MkdirAll(u.dir, 0o750); err != nil {
		return fmt.Errorf("upload.dir: %w", err)
	}
	return nil
}

// Precedence implements core.Router.
func (u *uploader) Precedence() int { return core.RouterUpload }

// Route implements core.Router: the upload path and everything below it.
func (u *uploader) Route(r *http.Request) http.Handler {
	if router.HasPathPrefix(r.URL.Path, u.path) {
		return u.handler
	}
	return nil
}
