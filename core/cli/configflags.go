package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// ConfigFlags are the flags every config-reading command takes: -c/--config, once or more
// (a file or a directory of *.yaml, *.yml and *.json files; docs/configuration.md, "Several
// files"), and, with Register, --set PATH=VALUE and --unset PATH.
type ConfigFlags struct {
	// Path is the first config path given (by -c or by name), "" when none.
	Path string
	// Paths are every config path given, in order.
	Paths []string
	// Sets are the --set assignments, in order.
	Sets []string
	// Unsets are the --unset paths, in order.
	Unsets []string
	// overrides are the --set and --unset values in command-line order, as they apply.
	overrides []flagOverride
}

// flagOverride is one --set (PATH=VALUE) or --unset (PATH) as written.
type flagOverride struct {
	text  string
	unset bool
}

// parse reads the override (config.ParseAssignment or config.ParseUnset).
func (o flagOverride) parse() (config.Assignment, error) {
	if o.unset {
		return config.ParseUnset(o.text, "--unset")
	}
	return config.ParseAssignment(o.text, "--set")
}

// HasOverrides reports whether any --set or --unset was given.
func (c *ConfigFlags) HasOverrides() bool { return len(c.overrides) > 0 }

// pathList is the flag.Value of -c/--config: each use appends a path.
type pathList struct{ c *ConfigFlags }

// String implements flag.Value.
func (p pathList) String() string {
	if p.c == nil {
		return ""
	}
	return strings.Join(p.c.Paths, ", ")
}

// Set implements flag.Value.
func (p pathList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty config path")
	}
	p.c.Paths = append(p.c.Paths, v)
	p.c.Path = p.c.Paths[0]
	return nil
}

// setList is the flag.Value of --set: each use appends an assignment, checked at once.
type setList struct{ c *ConfigFlags }

// String implements flag.Value.
func (s setList) String() string {
	if s.c == nil {
		return ""
	}
	return strings.Join(s.c.Sets, " ")
}

// Set implements flag.Value.
func (s setList) Set(v string) error {
	o := flagOverride{text: v}
	if _, err := o.parse(); err != nil {
		return err
	}
	s.c.Sets = append(s.c.Sets, v)
	s.c.overrides = append(s.c.overrides, o)
	return nil
}

// unsetList is the flag.Value of --unset: each use appends a path, checked at once.
type unsetList struct{ c *ConfigFlags }

// String implements flag.Value.
func (u unsetList) String() string {
	if u.c == nil {
		return ""
	}
	return strings.Join(u.c.Unsets, " ")
}

// Set implements flag.Value.
func (u unsetList) Set(v string) error {
	o := flagOverride{text: v, unset: true}
	if _, err := o.parse(); err != nil {
		return err
	}
	u.c.Unsets = append(u.c.Unsets, v)
	u.c.overrides = append(u.c.overrides, o)
	return nil
}

// Register adds -c/--config, --set and --unset to fs.
func (c *ConfigFlags) Register(fs *flag.FlagSet) {
	c.RegisterFiles(fs)
	fs.Var(setList{c}, "set", "override one key: `PATH=VALUE`, e.g. global.admin.bind=127.0.0.1:9901 or sites[0].port=8081 (VALUE is YAML; PATH= sets null; repeatable; after the CONDUIT_SET_* and CONDUIT_UNSET_* variables, in order with --unset)")
	fs.Var(unsetList{c}, "unset", "remove one key: `PATH`, e.g. global.otlp or sites[0].rateLimit (an error when the key is not there; repeatable; in order with --set)")
}

// RegisterFiles adds -c/--config (no --set) to fs.
func (c *ConfigFlags) RegisterFiles(fs *flag.FlagSet) {
	v := pathList{c}
	fs.Var(v, "c", "config `FILE` or directory; repeatable, merged in order (default: conduit.json, conduit.yaml or conduit.yml)")
	fs.Var(v, "config", "config `FILE` (same as -c)")
}

// Parse parses a config-reading command's arguments (see ParseFlags); positional arguments
// are config files, the same as -c. ok is false when the command should exit with code.
func (c *ConfigFlags) Parse(env *Env, fs *flag.FlagSet, args []string) (code int, ok bool) {
	pos, code, ok := ParseFlags(env, fs, args)
	if !ok {
		return code, false
	}
	if len(pos) > 0 && len(c.Paths) > 0 {
		fmt.Fprintf(env.Stderr, "%s: unexpected argument %q (config files are given by -c or by name, not both)\n", fs.Name(), pos[len(pos)-1])
		return 1, false
	}
	for _, p := range pos {
		if err := (pathList{c}).Set(p); err != nil {
			fmt.Fprintf(env.Stderr, "%s: %v\n", fs.Name(), err)
			return 1, false
		}
	}
	return 0, true
}

// Resolve returns the first config path: the flag, or discovery in env.Dir.
func (c *ConfigFlags) Resolve(env *Env) (string, error) {
	paths, err := c.ResolveAll(env)
	if err != nil {
		return "", err
	}
	return paths[0], nil
}

// ResolveAll returns the config paths: the flags, or the one discovery finds in env.Dir.
func (c *ConfigFlags) ResolveAll(env *Env) ([]string, error) {
	if len(c.Paths) > 0 {
		return c.Paths, nil
	}
	p, err := config.Discover(env.Dir)
	if err != nil {
		return nil, err
	}
	return []string{p}, nil
}

// Source returns the configuration source the flags name: their files merged, then the
// CONDUIT_SET_* and CONDUIT_UNSET_* variables of env and the --set and --unset flags applied
// (config.EnvAssignments, then the flags in command-line order). The assignments are
// checked here, once; each Load reads the files again.
func (c *ConfigFlags) Source(env *Env) (*FilesSource, error) {
	paths, err := c.ResolveAll(env)
	if err != nil {
		return nil, err
	}
	var environ []string
	if env.Environ != nil {
		environ = env.Environ()
	}
	sets, err := config.EnvAssignments(environ)
	if err != nil {
		return nil, err
	}
	for _, o := range c.overrides {
		a, err := o.parse()
		if err != nil {
			return nil, err
		}
		sets = append(sets, a)
	}
	lookup := env.LookupEnv
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return &FilesSource{Paths: paths, Sets: sets, lookup: lookup}, nil
}

// Load reads the config the flags name (see Source).
func (c *ConfigFlags) Load(env *Env) (*config.Document, error) {
	src, err := c.Source(env)
	if err != nil {
		return nil, err
	}
	return src.Load(context.Background())
}

// FilesSource is the configuration source of config files and directories with overrides:
// each Load reads every file again (and the environment for $VAR substitution), merges them
// (config.LoadFiles) and applies the assignments.
type FilesSource struct {
	// Paths are the files and directories, in order.
	Paths []string
	// Sets are the assignments applied after merging, in order.
	Sets   []config.Assignment
	lookup func(string) (string, bool)
}

var _ core.ConfigSource = (*FilesSource)(nil)

// Load implements core.ConfigSource.
func (s *FilesSource) Load(context.Context) (*config.Document, error) {
	doc, err := config.LoadFiles(s.Paths, s.lookup)
	if err != nil {
		return nil, err
	}
	for _, a := range s.Sets {
		if err := doc.Apply(a); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// String implements core.ConfigSource: the paths, comma-separated.
func (s *FilesSource) String() string { return strings.Join(s.Paths, ", ") }
