package cli

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// liveFlags are the flags whose values completion asks a running instance for.
var liveFlags = map[string]bool{"route": true, "target": true, "site": true}

// liveTimeout bounds the Admin API request of a completion: a shell must never hang on it.
const liveTimeout = 500 * time.Millisecond

// liveFor binds live to the words typed before the one being completed (nil stays nil).
func liveFor(live func(string, []string) []string, done []string) func(string) []string {
	if live == nil {
		return nil
	}
	return func(flag string) []string { return live(flag, done) }
}

// liveNames asks the Conduit the typed command line points at (--admin, -c FILE…, then
// CONDUIT_ADMIN and CONDUIT_ADMIN_TOKEN, as the admin commands resolve it) for the values
// of flag, from GET /upstreams: route paths (--route), target URLs (--target; only those of
// the --route already typed, if any) or site labels (--site). It is silent: an unreachable
// or slow instance (liveTimeout), a bad config or a refused token give no names.
func liveNames(env *Env, flag string, done []string) []string {
	var af AdminFlags
	route := ""
	for i := 0; i < len(done); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(done[i], "-"), "=")
		if !strings.HasPrefix(done[i], "-") {
			continue
		}
		if !hasVal {
			if i+1 >= len(done) {
				break
			}
			val = done[i+1]
		}
		switch name {
		case "admin":
			af.Addr = val
		case "c", "config":
			af.Config.Paths = append(af.Config.Paths, val)
			af.Config.Path = af.Config.Paths[0]
		case "route":
			route = val
		default:
			continue
		}
		if !hasVal {
			i++
		}
	}
	quiet := &Env{Stdout: env.Stdout, Stderr: env.Stderr, LookupEnv: env.LookupEnv, Environ: env.Environ, Dir: env.Dir}
	if err := af.loadConfig(quiet); err != nil {
		return nil
	}
	c := af.Client(quiet)
	c.HTTP = &http.Client{Timeout: liveTimeout}
	var out struct {
		Routes []struct {
			Site, Path string
			Targets    []map[string]any
		} `json:"routes"`
	}
	if _, err := c.Do(http.MethodGet, "/upstreams", nil, &out); err != nil {
		return nil
	}
	var names []string
	for _, r := range out.Routes {
		switch flag {
		case "route":
			names = append(names, r.Path)
		case "site":
			names = append(names, r.Site)
		case "target":
			if route != "" && r.Path != route {
				continue
			}
			for _, t := range r.Targets {
				if u, ok := t["url"].(string); ok {
					names = append(names, u)
				}
			}
		}
	}
	sort.Strings(names)
	return slices.Compact(names)
}
