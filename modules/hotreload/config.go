package hotreload

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// Config is the site's `hotReload` key: true, false, or {extensions, watch}.
type Config struct {
	// Enabled is false for `hotReload: false`.
	Enabled bool
	// Extensions limits the file types whose change reloads the browser ("css", "html");
	// empty means any file.
	Extensions []string
	// Watch lists extra directories to watch besides the site's static directories (the
	// original's example config uses it; the schema does not list it).
	Watch []string
}

type object struct {
	Extensions []string `json:"extensions"`
	Watch      []string `json:"watch"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	var o object
	if !config.DecodeToggle(n, path, d, "true, false or {extensions, watch}", &c.Enabled, &o) {
		return
	}
	for i, e := range o.Extensions {
		e = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(e), "."))
		if e == "" || strings.ContainsAny(e, `/\ *`) {
			d.Errorf(config.Index(config.Join(path, "extensions"), i), "must be a file extension such as \"css\", got %q", o.Extensions[i])
			continue
		}
		c.Extensions = append(c.Extensions, e)
	}
	for i, w := range o.Watch {
		if strings.TrimSpace(w) == "" {
			d.Errorf(config.Index(config.Join(path, "watch"), i), "must be a directory path")
			continue
		}
		c.Watch = append(c.Watch, w)
	}
}

// uniqueDirs cleans and de-duplicates directories, dropping those inside another listed one.
func uniqueDirs(dirs []string) []string {
	clean := make([]string, 0, len(dirs))
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			abs = filepath.Clean(d)
		}
		clean = append(clean, abs)
	}
	sort.Strings(clean)
	var out []string
	for _, d := range clean {
		if len(out) > 0 {
			last := out[len(out)-1]
			if d == last || strings.HasPrefix(d, last+string(filepath.Separator)) {
				continue
			}
		}
		out = append(out, d)
	}
	return out
}
