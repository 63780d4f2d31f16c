package static

import (
	"strconv"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core/config"
)

// Dirs is the `static` value in its three forms: one directory ("./dist"), an ordered list
// searched in turn (["./dist", "./public"]), or a map from URL prefix to directory
// ({"/": "./dist", "/docs": "./docs-dist"}). In the map form a value may also be a list.
type Dirs struct {
	// List holds the directories of the string and array forms, in search order.
	List []string
	// Prefixes holds the map form: URL prefix → directories in search order.
	Prefixes map[string][]string
}

// UnmarshalConfig implements config.Unmarshaler.
func (d *Dirs) UnmarshalConfig(n config.Node, path string, diag *config.Diagnostics) {
	switch v := n.(type) {
	case map[string]config.Node:
		if len(v) == 0 {
			diag.Errorf(path, "must name at least one directory")
			return
		}
		d.Prefixes = make(map[string][]string, len(v))
		for _, prefix := range config.SortedKeys(v) {
			p := config.Join(path, prefix)
			if !strings.HasPrefix(prefix, "/") {
				diag.Errorf(p, "URL prefix %q must start with \"/\"", prefix)
				continue
			}
			if list := dirList(v[prefix], p, diag); len(list) > 0 {
				d.Prefixes[prefix] = list
			}
		}
	default:
		d.List = dirList(n, path, diag)
	}
}

// dirList decodes a directory string or an array of them.
func dirList(n config.Node, path string, diag *config.Diagnostics) []string {
	switch v := n.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			diag.Errorf(path, "must be a directory path, got an empty string")
			return nil
		}
		return []string{v}
	case []config.Node:
		if len(v) == 0 {
			diag.Errorf(path, "must name at least one directory")
			return nil
		}
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok || strings.TrimSpace(s) == "" {
				diag.Errorf(config.Index(path, i), "must be a directory path, got %s", config.Describe(e))
				continue
			}
			out = append(out, s)
		}
		return out
	default:
		diag.Errorf(path, "must be a directory, an array of directories or an object of URL prefix → directory, got %s", config.Describe(n))
		return nil
	}
}

// Options is the site's `staticOptions` block.
type Options struct {
	// Index lists the directory index files, tried in order (default ["index.html"]).
	Index []string `json:"index"`
	// DotFiles is ignore (default: treat as not found), allow, or deny (403).
	DotFiles string `json:"dotFiles"`
	// PreCompressed serves .br/.gz sidecar files when the client accepts them.
	PreCompressed bool `json:"preCompressed"`
	// ETag sends an ETag and answers If-None-Match with 304 (default true).
	ETag *bool `json:"etag"`
	// LastModified sends Last-Modified and answers If-Modified-Since with 304 (default true).
	LastModified *bool `json:"lastModified"`
	// MaxAge sets Cache-Control: max-age=N; unset sends no Cache-Control.
	MaxAge *config.Humantime `json:"maxAge"`
}

// dotPolicy is the decoded dotFiles setting.
type dotPolicy uint8

const (
	dotIgnore dotPolicy = iota
	dotAllow
	dotDeny
)

// settings are the resolved options shared by every mount of one static instance.
type settings struct {
	index         []string
	dots          dotPolicy
	preCompressed bool
	etag          bool
	lastModified  bool
	cacheControl  string // "" for none
}

// resolveOptions validates o (decoded at path) and fills in the defaults.
func resolveOptions(o Options, path string, diag *config.Diagnostics) *settings {
	s := &settings{index: []string{"index.html"}, etag: true, lastModified: true, preCompressed: o.PreCompressed}
	if o.Index != nil {
		s.index = s.index[:0]
		for i, name := range o.Index {
			p := config.Index(config.Join(path, "index"), i)
			if rel, _, v := resolve(name); v != pathOK || rel == "" || strings.Contains(rel, "/") {
				diag.Errorf(p, "must be a plain file name, got %q", name)
				continue
			}
			s.index = append(s.index, name)
		}
	}
	switch o.DotFiles {
	case "", "ignore":
		s.dots = dotIgnore
	case "allow":
		s.dots = dotAllow
	case "deny":
		s.dots = dotDeny
	default:
		diag.Errorf(config.Join(path, "dotFiles"), "must be one of ignore, allow, deny; got %q", o.DotFiles)
	}
	if o.ETag != nil {
		s.etag = *o.ETag
	}
	if o.LastModified != nil {
		s.lastModified = *o.LastModified
	}
	if o.MaxAge != nil {
		secs := int64(time.Duration(*o.MaxAge) / time.Second)
		s.cacheControl = "max-age=" + strconv.FormatInt(secs, 10)
	}
	return s
}
