// Package xbuild builds custom Conduit binaries from a bundle or a feature list plus
// third-party modules, as xcaddy does for Caddy: it writes a main package and a go.mod in a
// temporary directory, pins the core, adds each module, and runs `go build`.
//
// The feature names come from the bundles themselves (the maybe_<feature>.go files of
// modules/bundle/*), read from the core source being built, so there is no second list to
// keep in step.
package xbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/template"
	"time"
)

// CoreModule is the Go module path of Conduit's core.
const CoreModule = "github.com/conduitproxy/conduit"

// DefaultTags are always passed to go build. grpcnotrace keeps grpc from linking
// golang.org/x/net/trace (and with it html/template, which defeats dead-code elimination).
var DefaultTags = []string{"grpcnotrace"}

// localVersion is the version required for a module that is replaced by a local directory.
const localVersion = "v0.0.0-00010101000000-000000000000"

// Plugin is one --with module.
type Plugin struct {
	// Module is the module (and package) path to import.
	Module string
	// Version is the version to get ("" for the latest, or when replaced).
	Version string
	// Replace is the replacement: an absolute directory or module[@version].
	Replace string
}

// String renders the plugin as a --with argument.
func (p Plugin) String() string {
	s := p.Module
	if p.Version != "" {
		s += "@" + p.Version
	}
	if p.Replace != "" {
		s += "=" + p.Replace
	}
	return s
}

// ParseWith parses a --with argument, module[@version][=replacement], as xcaddy's splitWith
// does: the first "=" splits off the replacement, then the last "@" of the rest splits off
// the version. A replacement that is a relative path is made absolute against dir.
func ParseWith(arg, dir string) (Plugin, error) {
	var p Plugin
	mod := arg
	if i := strings.Index(arg, "="); i >= 0 {
		mod, p.Replace = arg[:i], arg[i+1:]
		if p.Replace == "" {
			return Plugin{}, fmt.Errorf("--with %q: empty replacement after '='", arg)
		}
	}
	if i := strings.LastIndex(mod, "@"); i >= 0 {
		mod, p.Version = mod[:i], mod[i+1:]
		if p.Version == "" {
			return Plugin{}, fmt.Errorf("--with %q: empty version after '@'", arg)
		}
	}
	if mod == "" {
		return Plugin{}, fmt.Errorf("--with %q: a module path is required", arg)
	}
	p.Module = mod
	if p.Replace != "" && isLocalPath(p.Replace) {
		abs, err := absPath(p.Replace, dir)
		if err != nil {
			return Plugin{}, fmt.Errorf("--with %q: %w", arg, err)
		}
		p.Replace = abs
	}
	return p, nil
}

// isLocalPath reports whether a replacement or --core value names a directory rather than a
// module or a version.
func isLocalPath(s string) bool {
	return s == "." || s == ".." || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		filepath.IsAbs(s) || strings.HasPrefix(s, `.\`) || strings.HasPrefix(s, `..\`)
}

func absPath(p, dir string) (string, error) {
	if !filepath.IsAbs(p) {
		if dir == "" {
			wd, err := os.Getwd()
			if err != nil {
				return "", fmt.Errorf("working directory: %w", err)
			}
			dir = wd
		}
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p), nil
}

// Options describe one build.
type Options struct {
	// Bundle is minimal, standard or full. Empty means standard, or minimal when Features
	// is set.
	Bundle string
	// Features are added to the bundle.
	Features []string
	// With are the third-party modules.
	With []Plugin
	// Core is a directory holding the core module or a version of it. Empty means the
	// core of the module in Dir (this checkout, or the core a plugin directory uses).
	Core string
	// Output is the binary's path; relative paths are against Dir. Default: "conduit"
	// (with ".exe" for Windows) in Dir.
	Output string
	// GOOS and GOARCH select the target; empty means the environment's.
	GOOS, GOARCH string
	// Tags are added to DefaultTags.
	Tags []string
	// Keep leaves the temporary build directory in place and reports it.
	Keep bool
	// Dir is the directory relative paths are resolved against; empty means the working
	// directory.
	Dir string
	// Env is the environment the go command runs with; nil means os.Environ(). GOFLAGS,
	// GOPROXY, GOPRIVATE, GOOS and GOARCH pass through from it.
	Env []string
	// Log receives progress lines and the go commands run; nil discards them.
	Log io.Writer
	// Progress receives one line per build step with the time since the build started
	// ("xbuild: [  3.2s] compiling ..."), so a cold build (about a minute) is not silent;
	// nil discards them. cmd/xbuild sends them to stderr.
	Progress io.Writer
	// Go is the go command; empty means "go".
	Go string
	// CoreModule overrides CoreModule (tests use a stand-in core).
	CoreModule string
	// SkipSmoke skips running the built binary.
	SkipSmoke bool
}

// Result describes a finished build.
type Result struct {
	// Output is the absolute path of the binary.
	Output string
	// Core is the pinned core: an absolute directory or a version.
	Core string
	// Imports are the packages the generated main package imports for their side effects.
	Imports []string
	// Modules are the modules the built binary reports (empty when the smoke test was
	// skipped).
	Modules []ModuleInfo
	// Size is the binary's size in bytes.
	Size int64
	// Dir is the temporary build directory when Keep was set.
	Dir string
}

// ModuleInfo is one module as `conduit features --json` reports it.
type ModuleInfo struct {
	// ID is the module ID.
	ID string `json:"id"`
	// Feature is its feature name.
	Feature string `json:"feature"`
	// Package is the Go package that registered it.
	Package string `json:"package"`
	// Version is the Go module version for third-party modules.
	Version string `json:"version,omitempty"`
}

// NoRegistrationError reports a --with module that was linked but registered no Conduit
// module.
type NoRegistrationError struct {
	// Module is the --with module path.
	Module string
}

// Error implements error.
func (e *NoRegistrationError) Error() string {
	return fmt.Sprintf("module %s was built in but registered nothing: its package (or one it imports) must call core.Register from an init function", e.Module)
}

// CoreConflictError reports a module that needs a different core version than the pinned
// one.
type CoreConflictError struct {
	// Core is the core module path.
	Core string
	// Pinned is the core version asked for.
	Pinned string
	// Selected is the version the module graph would need ("" when go get refused).
	Selected string
	// Requirers are "module@version requires core@version" lines.
	Requirers []string
	// Detail is the go command's output.
	Detail string
}

// Error implements error.
func (e *CoreConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "core version conflict: the build pins %s@%s", e.Core, e.Pinned)
	if e.Selected != "" {
		fmt.Fprintf(&b, " but the modules need %s", e.Selected)
	}
	for _, r := range e.Requirers {
		b.WriteString("\n  " + r)
	}
	b.WriteString("\nuse --core with a version at least as new as the modules need, or a version of the module built for this core")
	if e.Detail != "" && len(e.Requirers) == 0 {
		b.WriteString("\ngo said:\n" + indent(e.Detail))
	}
	return b.String()
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// builder carries one build's state.
type builder struct {
	opts       Options
	coreModule string
	env        []string
	log        io.Writer
	progress   io.Writer
	start      time.Time
	gocmd      string
	tmp        string
}

// step writes one progress line with the time since the build started.
func (b *builder) step(format string, args ...any) {
	fmt.Fprintf(b.progress, "xbuild: [%5.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// Build runs one build. It is cancelled with ctx.
func Build(ctx context.Context, opts Options) (*Result, error) {
	b, err := newBuilder(opts)
	if err != nil {
		return nil, err
	}
	return b.run(ctx)
}

// CoreDir returns a directory holding the source of the core a build in dir would use (see
// Options.Core); an empty dir means the working directory.
func CoreDir(ctx context.Context, dir string) (string, error) {
	b, err := newBuilder(Options{Dir: dir})
	if err != nil {
		return "", err
	}
	_, coreDir, err := b.resolveCore(ctx)
	return coreDir, err
}

func newBuilder(opts Options) (*builder, error) {
	b := &builder{opts: opts, coreModule: opts.CoreModule, log: opts.Log, progress: opts.Progress, start: time.Now(), gocmd: opts.Go}
	if b.progress == nil {
		b.progress = io.Discard
	}
	if b.coreModule == "" {
		b.coreModule = CoreModule
	}
	if b.log == nil {
		b.log = io.Discard
	}
	if b.gocmd == "" {
		b.gocmd = "go"
	}
	b.env = opts.Env
	if b.env == nil {
		b.env = os.Environ()
	}
	// The temporary module must not pick up a go.work, and xbuild builds static binaries.
	b.env = append(cloneStrings(b.env), "GOWORK=off", "CGO_ENABLED=0")
	if opts.GOOS != "" {
		b.env = append(b.env, "GOOS="+opts.GOOS)
	}
	if opts.GOARCH != "" {
		b.env = append(b.env, "GOARCH="+opts.GOARCH)
	}
	if b.opts.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
		b.opts.Dir = wd
	}
	return b, nil
}

func cloneStrings(s []string) []string { return append([]string(nil), s...) }

// Plan is what a build would do, resolved without building (xbuild --dry-run).
type Plan struct {
	// Core is the pinned core: an absolute directory or a version.
	Core string
	// Imports are the packages the generated main package would import.
	Imports []string
}

// DryRun resolves a build without running it: the core it pins and the packages it imports.
// It fails exactly where Build would fail before compiling (an unknown bundle or feature, a
// core that cannot be found).
func DryRun(ctx context.Context, opts Options) (*Plan, error) {
	b, err := newBuilder(opts)
	if err != nil {
		return nil, err
	}
	return b.plan(ctx)
}

// plan resolves the core, the plugin module being built in Dir (when no --with is given)
// and the imports.
func (b *builder) plan(ctx context.Context) (*Plan, error) {
	core, coreDir, err := b.resolveCore(ctx)
	if err != nil {
		return nil, err
	}
	if len(b.opts.With) == 0 {
		if p, ok := b.currentPlugin(ctx); ok {
			fmt.Fprintf(b.log, "xbuild: building the plugin module in %s (--with %s)\n", b.opts.Dir, p)
			b.opts.With = []Plugin{p}
		}
	}
	imports, err := b.imports(coreDir)
	if err != nil {
		return nil, err
	}
	return &Plan{Core: core, Imports: imports}, nil
}

func (b *builder) run(ctx context.Context) (*Result, error) {
	b.step("resolving the core and the modules to link")
	p, err := b.plan(ctx)
	if err != nil {
		return nil, err
	}
	core, imports := p.Core, p.Imports
	out, err := b.output()
	if err != nil {
		return nil, err
	}
	b.step("core %s; %d packages to link; output %s", core, len(imports), out)

	b.tmp, err = os.MkdirTemp("", "xbuild-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	res := &Result{Output: out, Core: core, Imports: imports}
	if b.opts.Keep {
		res.Dir = b.tmp
		fmt.Fprintf(b.log, "xbuild: keeping %s\n", b.tmp)
	} else {
		defer os.RemoveAll(b.tmp)
	}

	if err := b.writeModule(ctx, core, imports); err != nil {
		return nil, err
	}
	tags := append(cloneStrings(DefaultTags), b.opts.Tags...)
	fmt.Fprintf(b.log, "xbuild: building %s\n", out)
	b.step("compiling (a cold build cache takes about a minute)")
	ldflags := "-s -w"
	if isLocalPath(core) {
		// A local core has no module version; say so instead of the placeholder version.
		ldflags += " -X " + b.coreModule + "/core/cli.version=devel"
	}
	if _, err := b.goCmd(ctx, "build", "-trimpath", "-ldflags", ldflags, "-tags", strings.Join(dedupe(tags), ","), "-o", out, "."); err != nil {
		return nil, err
	}
	st, err := os.Stat(out)
	if err != nil {
		return nil, fmt.Errorf("built binary: %w", err)
	}
	res.Size = st.Size()
	b.step("compiled %s (%.2f MB)", out, float64(res.Size)/1e6)
	if b.opts.SkipSmoke || !b.native() {
		if !b.opts.SkipSmoke {
			fmt.Fprintf(b.log, "xbuild: cross-compiled for %s/%s; smoke test skipped\n", b.targetOS(), b.targetArch())
		}
		return res, nil
	}
	b.step("smoke test: %s version, features --json", out)
	mods, err := b.smoke(ctx, out)
	if err != nil {
		return res, err
	}
	res.Modules = mods
	b.step("done")
	return res, nil
}

// resolveCore returns the pinned core (absolute directory or version) and a directory holding
// its source, for reading the bundles.
func (b *builder) resolveCore(ctx context.Context) (core, dir string, err error) {
	c := b.opts.Core
	if c == "" {
		c, err = b.defaultCore(ctx)
		if err != nil {
			return "", "", err
		}
	}
	if isLocalPath(c) {
		abs, err := absPath(c, b.opts.Dir)
		if err != nil {
			return "", "", err
		}
		if err := b.checkCoreDir(abs); err != nil {
			return "", "", err
		}
		return abs, abs, nil
	}
	// A version: download it to read its bundles.
	outb, err := b.goIn(ctx, os.TempDir(), "mod", "download", "-json", b.coreModule+"@"+c)
	if err != nil {
		return "", "", fmt.Errorf("download core %s@%s: %w", b.coreModule, c, err)
	}
	var info struct{ Version, Dir, Error string }
	if err := json.Unmarshal(outb, &info); err != nil {
		return "", "", fmt.Errorf("download core: decode go mod download output: %w", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", "", fmt.Errorf("download core %s@%s: %s", b.coreModule, c, info.Error)
	}
	return info.Version, info.Dir, nil
}

// defaultCore finds the core for a build run without --core: the checkout when run inside
// the core module, the core a plugin module uses (its replace directory or version) when run
// inside a plugin, else the version xbuild itself was built from.
func (b *builder) defaultCore(ctx context.Context) (string, error) {
	outb, err := b.goIn(ctx, b.opts.Dir, "list", "-m", "-json")
	if err == nil {
		var main struct{ Path, Dir string }
		if json.Unmarshal(outb, &main) == nil && main.Path == b.coreModule && main.Dir != "" {
			return main.Dir, nil
		}
		if outb, err := b.goIn(ctx, b.opts.Dir, "list", "-m", "-json", b.coreModule); err == nil {
			var dep struct {
				Version string
				Replace *struct{ Path, Dir, Version string }
			}
			if json.Unmarshal(outb, &dep) == nil {
				if dep.Replace != nil && dep.Replace.Version == "" && dep.Replace.Dir != "" {
					return dep.Replace.Dir, nil
				}
				if dep.Version != "" {
					return dep.Version, nil
				}
			}
		}
	}
	if v := selfVersion(); v != "" {
		return v, nil
	}
	return "", errors.New("cannot tell which core to build: run xbuild inside the Conduit repository or a plugin module, or pass --core <directory|version>")
}

// currentPlugin returns the module in Dir as a --with plugin replaced by its directory, when
// Dir is inside a module other than the core that requires the core (as xcaddy does inside a
// plugin's directory).
func (b *builder) currentPlugin(ctx context.Context) (Plugin, bool) {
	outb, err := b.goIn(ctx, b.opts.Dir, "list", "-m", "-json")
	if err != nil {
		return Plugin{}, false
	}
	var main struct{ Path, Dir string }
	if json.Unmarshal(outb, &main) != nil || main.Path == "" || main.Dir == "" || main.Path == b.coreModule {
		return Plugin{}, false
	}
	if _, err := b.goIn(ctx, b.opts.Dir, "list", "-m", b.coreModule); err != nil {
		return Plugin{}, false
	}
	return Plugin{Module: main.Path, Replace: main.Dir}, true
}

func (b *builder) checkCoreDir(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("--core %s: not a module directory: %w", dir, err)
	}
	want := "module " + b.coreModule
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == want {
			return nil
		}
	}
	return fmt.Errorf("--core %s: go.mod does not declare %q", dir, want)
}

// imports lists the packages main.go imports: the bundle, extra features, plugins.
func (b *builder) imports(coreDir string) ([]string, error) {
	bundle := b.opts.Bundle
	if bundle == "" {
		bundle = "standard"
		if len(b.opts.Features) > 0 {
			bundle = "minimal"
		}
	}
	known := false
	for _, x := range Bundles {
		known = known || x == bundle
	}
	if !known {
		return nil, fmt.Errorf("unknown bundle %q (bundles: %s)", bundle, strings.Join(Bundles, ", "))
	}
	set, err := LoadFeatures(coreDir)
	if err != nil {
		return nil, fmt.Errorf("read the core's bundles: %w", err)
	}
	feats, err := set.Resolve(b.opts.Features)
	if err != nil {
		return nil, err
	}
	rank := map[string]int{}
	for i, x := range Bundles {
		rank[x] = i
	}
	imports := []string{BundlePackage(b.coreModule, bundle)}
	for _, f := range feats {
		if rank[f.Bundle] > rank[bundle] {
			imports = append(imports, f.Package)
		}
	}
	for _, p := range b.opts.With {
		imports = append(imports, p.Module)
	}
	return dedupe(imports), nil
}

func (b *builder) output() (string, error) {
	out := b.opts.Output
	if out == "" {
		out = "conduit"
		if b.targetOS() == "windows" {
			out += ".exe"
		}
	}
	return absPath(out, b.opts.Dir)
}

var mainTemplate = template.Must(template.New("main").Parse(`// Code generated by xbuild. DO NOT EDIT.

package main

import (
	"{{.Core}}/core/cli"
{{range .Imports}}
	_ "{{.}}"{{end}}
)

func main() { cli.Main() }
`))

// writeModule writes go.mod and main.go and resolves every requirement.
func (b *builder) writeModule(ctx context.Context, core string, imports []string) error {
	b.step("writing the build module in %s", b.tmp)
	if _, err := b.goCmd(ctx, "mod", "init", "conduitbuild"); err != nil {
		return err
	}
	// Replacements first, so that later steps never look the replaced modules up.
	local := isLocalPath(core)
	var edits []string
	if local {
		edits = append(edits, "-replace", b.coreModule+"="+core, "-require", b.coreModule+"@"+localVersion)
	}
	for _, p := range b.opts.With {
		if p.Replace == "" {
			continue
		}
		edits = append(edits, "-replace", p.Module+"="+p.Replace)
		if isLocalPath(p.Replace) {
			edits = append(edits, "-require", p.Module+"@"+localVersion)
		}
	}
	if len(edits) > 0 {
		if _, err := b.goCmd(ctx, append([]string{"mod", "edit"}, edits...)...); err != nil {
			return err
		}
	}
	pinned := localVersion
	if !local {
		pinned = core
		b.step("fetching %s@%s", b.coreModule, core)
		if _, err := b.goCmd(ctx, "get", b.coreModule+"@"+core); err != nil {
			return err
		}
	}
	// Each plugin that is not replaced is fetched with a versioned core pinned in the same
	// command, so that a plugin cannot move the core.
	for _, p := range b.opts.With {
		if p.Replace != "" {
			continue
		}
		v := p.Version
		if v == "" {
			v = "latest"
		}
		args := []string{"get", p.Module + "@" + v}
		if !local {
			// A local core is replaced for every version, so whatever core version the
			// plugin requires still resolves to the local directory; only a versioned
			// core needs pinning.
			args = append(args, b.coreModule+"@"+pinned)
		}
		b.step("fetching %s@%s", p.Module, v)
		if out, err := b.goCmd(ctx, args...); err != nil {
			if !local && mentionsCoreConflict(out, b.coreModule) {
				return &CoreConflictError{Core: b.coreModule, Pinned: pinned, Requirers: b.coreRequirers(out), Detail: string(out)}
			}
			return err
		}
	}
	var src bytes.Buffer
	if err := mainTemplate.Execute(&src, struct {
		Core    string
		Imports []string
	}{b.coreModule, imports}); err != nil {
		return fmt.Errorf("render main.go: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.tmp, "main.go"), src.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write main.go: %w", err)
	}
	b.step("resolving dependencies (go mod tidy)")
	if _, err := b.goCmd(ctx, "mod", "tidy"); err != nil {
		return err
	}
	if !local {
		return b.checkCorePinned(ctx, pinned)
	}
	return nil
}

// mentionsCoreConflict recognises go get's refusal to move a module it was told to pin.
func mentionsCoreConflict(out []byte, coreModule string) bool {
	s := string(out)
	return strings.Contains(s, coreModule+"@") && (strings.Contains(s, "is requested") || strings.Contains(s, "requires "+coreModule))
}

// coreRequirers extracts the lines of go output that say who needs the core.
func (b *builder) coreRequirers(out []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "go: "))
		if strings.Contains(l, "requires "+b.coreModule+"@") || (strings.Contains(l, b.coreModule+"@") && strings.Contains(l, "requested")) {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkCorePinned fails when the resolved module graph selected another core than pinned.
func (b *builder) checkCorePinned(ctx context.Context, pinned string) error {
	outb, err := b.goCmd(ctx, "list", "-m", "-f", "{{.Version}}", b.coreModule)
	if err != nil {
		return err
	}
	selected := strings.TrimSpace(string(outb))
	if selected == pinned {
		return nil
	}
	graph, err := b.goCmd(ctx, "mod", "graph")
	if err != nil {
		return err
	}
	var req []string
	for _, l := range strings.Split(string(graph), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && strings.HasPrefix(f[1], b.coreModule+"@") && f[1] != b.coreModule+"@"+pinned && !strings.HasPrefix(f[0], "conduitbuild") {
			req = append(req, f[0]+" requires "+f[1])
		}
	}
	return &CoreConflictError{Core: b.coreModule, Pinned: pinned, Selected: selected, Requirers: req}
}

func (b *builder) targetOS() string {
	if b.opts.GOOS != "" {
		return b.opts.GOOS
	}
	if v := lookupEnv(b.opts.Env, "GOOS"); v != "" {
		return v
	}
	return runtime.GOOS
}

func (b *builder) targetArch() string {
	if b.opts.GOARCH != "" {
		return b.opts.GOARCH
	}
	if v := lookupEnv(b.opts.Env, "GOARCH"); v != "" {
		return v
	}
	return runtime.GOARCH
}

func (b *builder) native() bool {
	return b.targetOS() == runtime.GOOS && b.targetArch() == runtime.GOARCH
}

func lookupEnv(env []string, key string) string {
	if env == nil {
		return os.Getenv(key)
	}
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// smoke runs the built binary's `version`, then checks with `features --json` that every
// --with module registered a Conduit module.
func (b *builder) smoke(ctx context.Context, bin string) ([]ModuleInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	version, err := runBinary(ctx, bin, "version")
	if err != nil {
		return nil, fmt.Errorf("smoke test: %s version: %w", bin, err)
	}
	fmt.Fprintf(b.log, "xbuild: %s version:\n%s", bin, indent(string(version))+"\n")
	var mods []ModuleInfo
	if out, err := runBinary(ctx, bin, "features", "--json"); err == nil {
		var doc struct {
			Modules []ModuleInfo `json:"modules"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			return nil, fmt.Errorf("smoke test: decode `features --json`: %w", err)
		}
		mods = doc.Modules
		for i := range mods {
			mods[i].Version = displayVersion(mods[i].Version)
		}
	}
	for _, p := range b.opts.With {
		found := false
		if mods != nil {
			for _, m := range mods {
				if m.Package == p.Module || strings.HasPrefix(m.Package, p.Module+"/") {
					found = true
				}
			}
		} else {
			// A core without `features`: fall back to the module versions `version` prints.
			found = bytes.Contains(version, []byte(p.Module))
		}
		if !found {
			return mods, &NoRegistrationError{Module: p.Module}
		}
	}
	return mods, nil
}

func runBinary(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// goCmd runs the go command in the temporary module.
func (b *builder) goCmd(ctx context.Context, args ...string) ([]byte, error) {
	return b.goIn(ctx, b.tmp, args...)
}

// goIn runs the go command in dir and returns its combined output; a failure carries the
// command line and the output.
func (b *builder) goIn(ctx context.Context, dir string, args ...string) ([]byte, error) {
	fmt.Fprintf(b.log, "xbuild: %s %s\n", b.gocmd, quoteArgs(args))
	cmd := exec.CommandContext(ctx, b.gocmd, args...)
	cmd.Dir = dir
	cmd.Env = b.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		combined := append(stdout.Bytes(), stderr.Bytes()...)
		return combined, fmt.Errorf("%s %s: %w\n%s", b.gocmd, quoteArgs(args), err, indent(strings.TrimSpace(string(combined))))
	}
	if stderr.Len() > 0 {
		b.log.Write(stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			q[i] = fmt.Sprintf("%q", a)
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// selfVersion is the core version xbuild itself was installed from (go install
// github.com/conduitproxy/conduit/cmd/xbuild@vX), or "".
func selfVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path != CoreModule {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return ""
}

// displayVersion rewrites the version a built binary reports for a module replaced by a
// directory ("example.com/plugin@=> /src/plugin", as core/cli's moduleVersion spells it) in
// the form `go list -m` uses ("example.com/plugin => /src/plugin"); other versions are
// returned unchanged.
func displayVersion(v string) string {
	if mod, dir, ok := strings.Cut(v, "@=> "); ok {
		return mod + " => " + dir
	}
	return v
}
