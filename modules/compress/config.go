package compress

import (
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// Config is the site's `compression` key: true, false, or
// {algorithms, level, minBytes, types}.
type Config struct {
	// Enabled is false for `compression: false`.
	Enabled bool
	// Algorithms lists the content codings offered, in the server's order of preference
	// (default br, zstd, gzip; deflate is also supported).
	Algorithms []string
	// Level is 0–9 (default 6); 0 means each algorithm's fastest setting.
	Level int
	// MinBytes is the smallest body that is compressed (default 1024).
	MinBytes int
	// Types are Content-Type prefixes that are compressed; AllTypes is set for ["*"] or [""].
	Types []string
	// AllTypes compresses every content type.
	AllTypes bool
}

// Defaults of the object form (and of `compression: true`).
var (
	defaultAlgorithms = []string{"br", "zstd", "gzip"}
	defaultTypes      = []string{"text/", "application/json", "application/xml", "application/javascript", "application/xhtml", "image/svg"}
)

const (
	defaultLevel    = 6
	defaultMinBytes = 1024
	// maxMinBytes bounds minBytes, which is also how much of a body of unknown length is
	// held back before deciding.
	maxMinBytes = 16 << 20
)

// object is the strict shape of the object form.
type object struct {
	Algorithms []string `json:"algorithms"`
	Level      *int     `json:"level"`
	MinBytes   *int64   `json:"minBytes"`
	Types      []string `json:"types"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	c.Algorithms = defaultAlgorithms
	c.Level = defaultLevel
	c.MinBytes = defaultMinBytes
	c.Types = defaultTypes
	var o object
	if !config.DecodeToggle(n, path, d, "true, false or {algorithms, level, minBytes, types}", &c.Enabled, &o) {
		return
	}
	if o.Algorithms != nil {
		c.Algorithms = nil
		for i, a := range o.Algorithms {
			p := config.Index(config.Join(path, "algorithms"), i)
			a = strings.ToLower(strings.TrimSpace(a))
			if a == "brotli" {
				a = "br"
			}
			if codingIndex(a) < 0 {
				d.Errorf(p, "unsupported algorithm %q (supported: br, zstd, gzip, deflate)", o.Algorithms[i])
				continue
			}
			dup := false
			for _, prev := range c.Algorithms {
				dup = dup || prev == a
			}
			if dup {
				d.Warnf(p, "algorithm %q is listed twice", a)
				continue
			}
			c.Algorithms = append(c.Algorithms, a)
		}
		if len(o.Algorithms) == 0 {
			d.Warnf(config.Join(path, "algorithms"), "is empty, so nothing is compressed")
		}
	}
	if o.Level != nil {
		if *o.Level < 0 || *o.Level > 9 {
			d.Errorf(config.Join(path, "level"), "must be between 0 and 9, got %d", *o.Level)
		}
		c.Level = min(max(*o.Level, 0), 9)
	}
	if o.MinBytes != nil {
		if *o.MinBytes < 0 || *o.MinBytes > maxMinBytes {
			d.Errorf(config.Join(path, "minBytes"), "must be between 0 and %d, got %d", maxMinBytes, *o.MinBytes)
		}
		c.MinBytes = int(min(max(*o.MinBytes, 0), maxMinBytes))
	}
	if o.Types != nil {
		c.Types = nil
		for i, t := range o.Types {
			t = strings.ToLower(strings.TrimSpace(t))
			if t == "*" || t == "" {
				c.AllTypes = true
				continue
			}
			if strings.ContainsAny(t, " ,;") {
				d.Errorf(config.Index(config.Join(path, "types"), i), "must be a Content-Type prefix such as \"text/\", got %q", o.Types[i])
				continue
			}
			c.Types = append(c.Types, t)
		}
		if len(o.Types) == 0 {
			d.Warnf(config.Join(path, "types"), "is empty, so nothing is compressed")
		}
	}
}

// typeOK reports whether a Content-Type value is in the configured list. text/event-stream
// is never compressed unless it is listed explicitly (as Traefik): event streams are read
// by clients and intermediaries that expect each event to arrive as written.
func (c *Config) typeOK(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	stream := isEventStream(ct)
	for _, p := range c.Types {
		if len(ct) >= len(p) && strings.EqualFold(ct[:len(p)], p) {
			if stream && !isEventStream(p) {
				continue
			}
			return true
		}
	}
	return c.AllTypes && !stream && ct != ""
}

func isEventStream(ct string) bool { return strings.EqualFold(ct, "text/event-stream") }
