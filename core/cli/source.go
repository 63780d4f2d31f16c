package cli

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/conduitproxy/conduit/core"
)

// SourceFlag is a `conduit run` flag that makes a module's configuration source the
// server's source instead of a config file (--kubernetes-namespace, from modules/kubernetes).
type SourceFlag struct {
	// Name is the flag's name without dashes.
	Name string
	// Usage is the flag's help text.
	Usage string
	// Open returns the source the flag's value names. The server loads its first generation
	// from it, reloads from it, and, when it is a core.ConfigWatcher, reloads on each change
	// it reports. A source that holds resources releases them when ctx ends.
	Open func(ctx SourceContext, value string) (core.ConfigSource, error)
}

// SourceContext is what SourceFlag.Open runs with.
type SourceContext struct {
	// Env is the command's environment.
	Env *Env
	// Logger is the process logger.
	Logger *slog.Logger
	// Done is closed when the process stops serving.
	Done <-chan struct{}
}

var sourceFlags = struct {
	sync.Mutex
	m map[string]SourceFlag
}{m: map[string]SourceFlag{}}

// RegisterSource adds a configuration source flag to `conduit run`; call it from init(). It
// panics on a duplicate name.
func RegisterSource(f SourceFlag) {
	sourceFlags.Lock()
	defer sourceFlags.Unlock()
	if _, dup := sourceFlags.m[f.Name]; dup {
		panic("cli.RegisterSource: duplicate flag " + f.Name)
	}
	sourceFlags.m[f.Name] = f
}

// registeredSources returns the source flags in name order.
func registeredSources() []SourceFlag {
	sourceFlags.Lock()
	defer sourceFlags.Unlock()
	out := make([]SourceFlag, 0, len(sourceFlags.m))
	for _, f := range sourceFlags.m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// chosenSource is the source flag given on the command line (ok false: none), or an error
// when more than one is given, or one together with a config file.
func chosenSource(flags []SourceFlag, values []*string, configPath string) (f SourceFlag, value string, ok bool, err error) {
	for i, sf := range flags {
		if *values[i] == "" {
			continue
		}
		if ok {
			return f, "", false, fmt.Errorf("--%s and --%s are two configuration sources; give one", f.Name, sf.Name)
		}
		f, value, ok = sf, *values[i], true
	}
	if ok && configPath != "" {
		return f, "", false, fmt.Errorf("--%s replaces the config file; do not give -c %s as well", f.Name, configPath)
	}
	return f, value, ok, nil
}
