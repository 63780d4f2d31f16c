package accesslog

import (
	"fmt"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
)

// Format is an access-log line format.
type Format int

// The formats of `logging.format` (docs/observability.md, "Access logs").
const (
	// FormatDev is `METHOD /path STATUS 1.234 ms - 512`, the status coloured on a terminal.
	FormatDev Format = iota
	// FormatCombined is the Apache/nginx Combined Log Format.
	FormatCombined
	// FormatCommon is the Apache Common Log Format.
	FormatCommon
	// FormatShort is `ip user METHOD /path HTTP/1.1 STATUS bytes - 1.234 ms`, no timestamp.
	FormatShort
	// FormatJSON is one JSON object per line (the fields of appendJSON).
	FormatJSON
)

var formatNames = map[string]Format{
	"dev": FormatDev, "combined": FormatCombined, "common": FormatCommon, "short": FormatShort, "json": FormatJSON,
}

var formatList = []string{"dev", "combined", "common", "short", "json"}

// String names the format.
func (f Format) String() string { return formatList[f] }

// Config is the site's `logging` key: false, true, a format name, or
// {format, file, skipPaths, stripQuery}.
type Config struct {
	Enabled    bool
	Format     Format
	File       string
	SkipPaths  *skippaths.Matcher
	StripQuery bool
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	switch v := n.(type) {
	case bool:
		c.Enabled = v
	case string:
		c.Enabled = true
		c.Format = parseFormat(v, path, d)
	case map[string]config.Node:
		c.Enabled = true
		var o options
		config.Decode(v, path, &o, d)
		if o.Format != nil {
			c.Format = parseFormat(*o.Format, config.Join(path, "format"), d)
		}
		if o.File != nil {
			if strings.TrimSpace(*o.File) == "" {
				d.Errorf(config.Join(path, "file"), "must not be empty")
			}
			c.File = *o.File
		}
		c.SkipPaths = skippaths.New(o.SkipPaths, config.Join(path, "skipPaths"), d)
		c.StripQuery = o.StripQuery
	default:
		d.Errorf(path, "must be true, false, a format (%s) or {format, file, skipPaths, stripQuery}, got %s",
			strings.Join(formatList, ", "), config.Describe(n))
	}
}

func parseFormat(s, path string, d *config.Diagnostics) Format {
	if f, ok := formatNames[strings.ToLower(s)]; ok {
		return f
	}
	if s == "none" || s == "off" {
		d.Errorf(path, "unknown format %q: use `logging: false` to turn access logs off", s)
		return FormatDev
	}
	hint := ""
	if sug := config.Suggest(strings.ToLower(s), formatList); sug != "" {
		hint = fmt.Sprintf("; did you mean %q?", sug)
	}
	d.Errorf(path, "unknown format %q (one of %s)%s", s, strings.Join(formatList, ", "), hint)
	return FormatDev
}
