// Package cli is the `conduit` command. Modules add their own subcommands with
// RegisterCommand, so a custom build's CLI matches its features.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server"
)

// Command is one `conduit` subcommand.
type Command struct {
	// Name is the word after `conduit`.
	Name string
	// Summary is one line for `conduit help`.
	Summary string
	// Run executes the command with the arguments after its name and returns the exit code.
	Run func(env *Env, args []string) int
	// NoConfig marks a command that reads no config file (version, help): the global config
	// option written before it (`conduit -c FILE version`) is accepted and has no effect.
	NoConfig bool
	// Hidden keeps the command out of help, the man page and completion (the completion
	// helper itself).
	Hidden bool
}

// Env is what a command runs with: its streams and the environment lookup.
type Env struct {
	// Stdin is read by interactive commands (init's wizard); nil reads nothing.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
	// NoColor turns colour off whatever the streams are (--no-color; see Style).
	NoColor bool
	// Environ lists the environment as "NAME=value" entries (for the CONDUIT_SET_*
	// overrides); nil is an environment without them.
	Environ func() []string
	// Dir is the working directory used for config discovery.
	Dir string
	// describe, when set, receives the flag set ParseFlags was given instead of parsing it
	// (Describe reads a command's flags this way).
	describe func(*flag.FlagSet)
}

var commands = struct {
	sync.Mutex
	m map[string]Command
}{m: map[string]Command{}}

// RegisterCommand adds a subcommand; call it from init(). It panics on a duplicate name.
func RegisterCommand(c Command) {
	commands.Lock()
	defer commands.Unlock()
	if _, dup := commands.m[c.Name]; dup {
		panic("cli.RegisterCommand: duplicate command " + c.Name)
	}
	commands.m[c.Name] = c
}

func init() {
	RegisterCommand(Command{Name: "validate", Summary: "check a config file and print every error", Run: runValidate})
	RegisterCommand(Command{Name: "fmt", Summary: "pretty-print a config file (--write rewrites it)", Run: runFmt})
	RegisterCommand(Command{Name: "version", Summary: "print the version and the compiled-in modules", Run: runVersion, NoConfig: true})
	RegisterCommand(Command{Name: "help", Summary: "show this help, or a command's (help COMMAND)", Run: runHelp, NoConfig: true})
	RegisterCommand(Command{Name: "run", Summary: "serve (the default when no command is given)", Run: runServe})
}

// Main runs the command line and exits.
func Main() {
	wd, _ := os.Getwd()
	os.Exit(Run(&Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv, Environ: os.Environ, Dir: wd}, os.Args[1:]))
}

// Run executes a command line (without the program name) and returns the exit code.
func Run(env *Env, args []string) int {
	args = stripNoColor(env, args)
	args = hoistGlobalOptions(args)
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help":
			return runHelp(env, nil)
		case "-V", "--version":
			return runVersion(env, nil)
		}
		if !strings.HasPrefix(args[0], "-") {
			c, ok := lookupCommand(args[0])
			if !ok {
				fmt.Fprintf(env.Stderr, "conduit: unknown command %q (see `conduit help`)\n", args[0])
				return 1
			}
			return c.Run(env, args[1:])
		}
	}
	return runServe(env, args)
}

// stripNoColor removes the global --no-color option (anywhere before a "--") from args and
// records it in env.
func stripNoColor(env *Env, args []string) []string {
	out := args[:0:0]
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "--no-color" || a == "-no-color" {
			env.NoColor = true
			continue
		}
		out = append(out, a)
	}
	return out
}

// configOptions are the spellings of the global config option.
var configOptions = map[string]bool{"-c": true, "--c": true, "-config": true, "--config": true}

// hoistGlobalOptions moves the config options written before a command word
// (`conduit -c FILE validate`) to just after it (`conduit validate -c FILE`), so global
// options work before or after the command. Without a command word after them, args are
// returned unchanged (they are `run`'s flags).
func hoistGlobalOptions(args []string) []string {
	i := 0
	for i < len(args) {
		a := args[i]
		name, _, hasValue := strings.Cut(a, "=")
		if !configOptions[name] {
			break
		}
		if hasValue {
			i++
			continue
		}
		if i+1 >= len(args) {
			return args
		}
		i += 2
	}
	if i == 0 || i >= len(args) || !isCommand(args[i]) {
		return args
	}
	if c, _ := lookupCommand(args[i]); c.NoConfig {
		// The config option is global; a command that reads no config ignores it.
		return args[i:]
	}
	out := make([]string, 0, len(args))
	out = append(out, args[i])
	out = append(out, args[:i]...)
	return append(out, args[i+1:]...)
}

// isCommand reports whether name is a registered command.
func isCommand(name string) bool {
	_, ok := lookupCommand(name)
	return ok
}

// lookupCommand returns the registered command called name.
func lookupCommand(name string) (Command, bool) {
	commands.Lock()
	defer commands.Unlock()
	c, ok := commands.m[name]
	return c, ok
}

// ParseFlags parses args into fs with flags and arguments in any order (a "--" ends the
// flags) and returns the arguments. -h or --help prints the command's usage on stdout and
// returns exit code 0 with ok false; a bad flag prints the error and usage on stderr and
// returns 1 with ok false.
func ParseFlags(env *Env, fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	if env.describe != nil {
		env.describe(fs)
		return nil, 0, false
	}
	var buf strings.Builder
	fs.SetOutput(&buf)
	defer fs.SetOutput(env.Stderr)
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, buf.String())
			return nil, 0, false
		}
		if err != nil {
			fmt.Fprint(env.Stderr, buf.String())
			return nil, 1, false
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		if len(rest) == 0 {
			return pos, 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// NewFlagSet returns a flag set for a subcommand that reports errors to env.Stderr.
func NewFlagSet(env *Env, name string) *flag.FlagSet { return newFlagSet(env, name) }

func newFlagSet(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("conduit "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	SetUsage(fs, "[flags]")
	return fs
}

// SetUsage makes fs print "usage: conduit NAME ARGS", the command's summary and its flags
// on -h/--help and after a bad flag.
func SetUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s %s\n", fs.Name(), synopsis)
		if s := summaryOf(strings.TrimPrefix(fs.Name(), "conduit ")); s != "" {
			fmt.Fprintf(w, "\n%s\n", s)
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
}

// summaryOf returns the help summary of the command name ("" if none).
func summaryOf(name string) string {
	commands.Lock()
	defer commands.Unlock()
	return commands.m[name].Summary
}

func runValidate(env *Env, args []string) int {
	fs := newFlagSet(env, "validate")
	SetUsage(fs, "[-c FILE | FILE]")
	var cf ConfigFlags
	cf.Register(fs)
	if code, ok := cf.Parse(env, fs, args); !ok {
		return code
	}
	doc, err := cf.Load(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	g, d := server.Build(context.Background(), doc, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
	errStyle, outStyle := StyleFor(env, env.Stderr), StyleFor(env, env.Stdout)
	for _, w := range d.Warnings() {
		fmt.Fprintln(env.Stderr, errStyle.Diagnostic(w))
	}
	if errs := d.Errors(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(env.Stdout, outStyle.Diagnostic(e))
		}
		// The wording docs/configuration.md quotes ("validate footer"); scripts may match on it.
		fmt.Fprintln(env.Stdout, outStyle.Red(fmt.Sprintf("%d errors found.", len(errs))))
		return 1
	}
	g.Stop(context.Background())
	fmt.Fprintln(env.Stdout, outStyle.Green(fmt.Sprintf("Config is valid — %d sites, %d routes.", len(g.Sites), g.Routes)))
	return 0
}

func runVersion(env *Env, args []string) int {
	if code, ok := parseNoArgs(env, "version", args); !ok {
		return code
	}
	fmt.Fprintf(env.Stdout, "conduit %s (%s)\n", Version(), goVersion())
	fmt.Fprintln(env.Stdout, "modules:")
	for _, m := range core.Modules() {
		v := moduleVersion(m)
		line := "  " + m.ID
		if v != "" {
			line += " " + v
		}
		if m.Description != "" {
			line += " — " + m.Description
		}
		fmt.Fprintln(env.Stdout, line)
	}
	return 0
}

// parseNoArgs parses the arguments of a command that takes none (only -h/--help).
func parseNoArgs(env *Env, name string, args []string) (code int, ok bool) {
	_, code, ok = parseArgs(env, name, "", 0, args)
	return code, ok
}

// parseArgs parses the arguments of a command without flags of its own that takes at most
// max positional arguments; synopsis is its usage line after the name.
func parseArgs(env *Env, name, synopsis string, max int, args []string) (pos []string, code int, ok bool) {
	fs := newFlagSet(env, name)
	SetUsage(fs, synopsis)
	pos, code, ok = ParseFlags(env, fs, args)
	if ok && len(pos) > max {
		fmt.Fprintf(env.Stderr, "conduit %s: unexpected argument %q\n", name, pos[max])
		return nil, 1, false
	}
	return pos, code, ok
}

func runHelp(env *Env, args []string) int {
	pos, code, ok := parseArgs(env, "help", "[COMMAND]", 1, args)
	if !ok {
		return code
	}
	if len(pos) == 1 {
		c, ok := lookupCommand(pos[0])
		if !ok {
			fmt.Fprintf(env.Stderr, "conduit help: unknown command %q (see `conduit help`)\n", pos[0])
			return 1
		}
		// The same text as `conduit COMMAND --help`: the command's own usage.
		return c.Run(env, []string{"--help"})
	}
	fmt.Fprintln(env.Stdout, "Conduit — reverse proxy and API gateway")
	fmt.Fprintln(env.Stdout, "")
	fmt.Fprintln(env.Stdout, "usage: conduit [-c FILE] [command] [flags] [FILE]")
	fmt.Fprintln(env.Stdout, "")
	fmt.Fprintln(env.Stdout, "commands:")
	for _, c := range Commands() {
		fmt.Fprintf(env.Stdout, "  %-11s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintln(env.Stdout, "")
	for _, line := range globalNotes {
		fmt.Fprintln(env.Stdout, line)
	}
	fmt.Fprintln(env.Stdout, "`conduit help COMMAND` or `conduit COMMAND --help` shows a command's flags.")
	fmt.Fprintln(env.Stdout, "")
	fmt.Fprintln(env.Stdout, "environment:")
	for _, v := range environment {
		fmt.Fprintf(env.Stdout, "  %-20s %s\n", v.name, v.text)
	}
	return 0
}

// globalNotes are the sentences about the global options help and the man page print.
var globalNotes = []string{
	"-c FILE goes before or after the command; a config-reading command also takes FILE by name.",
	"--no-color (anywhere) turns colour off; it is on only when the output is a terminal.",
	"Without either, conduit looks for conduit.json, conduit.yaml, then conduit.yml.",
	"-c repeats and takes directories (their *.yaml, *.yml, *.json files in name order): the files are merged.",
	"--set PATH=VALUE overrides one key (global.admin.bind=127.0.0.1:9901, sites[0].port=8081); --unset PATH removes one (global.otlp).",
}

// environment lists the variables conduit reads, for help and the man page.
var environment = []struct{ name, text string }{
	{"CONDUIT_LOG", "debug|info|warn|error (default info); RUST_LOG is read when it is unset"},
	{"CONDUIT_ADMIN", "Admin API address for reload, status, shutdown, tap, top, upstreams (default 127.0.0.1:2019; --admin, then global.admin.bind of -c FILE win)"},
	{"CONDUIT_ADMIN_TOKEN", "bearer token for those commands (global.admin.token of -c FILE wins)"},
	{"CONDUIT_SET_*", "each holds one PATH=VALUE override, like --set (applied in name order, before --set and --unset)"},
	{"CONDUIT_UNSET_*", "each holds one PATH to remove, like --unset (applied in name order, after CONDUIT_SET_*, before the flags)"},
	{"NO_COLOR", "when set (to anything but empty), no colour in the output even on a terminal"},
	{"CONDUIT_PPROF", "address of a Go pprof listener the server starts (debugging)"},
	{"CONDUIT_GC_FLOOR_MIB", "heap size in MiB below which the server does not start a GC cycle (default 16; 0 turns it off; ignored when GOGC or GOMEMLIMIT is set)"},
	{"CONDUIT_HTTP1_ENGINE", "conduit|std: the HTTP/1 engine of configurations without global.http1Engine (default conduit)"},
}

func runServe(env *Env, args []string) int {
	fs := newFlagSet(env, "run")
	var cf ConfigFlags
	cf.Register(fs)
	bind := fs.String("bind", "", "HOST or HOST:PORT the listeners of sites without a bind key bind to; a PORT replaces their port key (default: all interfaces, the configured ports)")
	logLevel := new(string)
	SuggestVar(fs, logLevel, "log-level", "", []string{"debug", "info", "warn", "error"}, "process log `LEVEL`: debug, info, warn, error (default $CONDUIT_LOG, then $RUST_LOG, then info)")
	sources := registeredSources()
	sourceValues := make([]*string, len(sources))
	for i, sf := range sources {
		sourceValues[i] = fs.String(sf.Name, "", sf.Usage)
	}
	SetUsage(fs, "[-c FILE | FILE] [--bind HOST] [--log-level LEVEL]")
	if code, ok := cf.Parse(env, fs, args); !ok {
		return code
	}
	plog, err := newLogger(env, *logLevel)
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit: %v\n", err)
		return 1
	}
	logger := plog.logger()
	slog.SetDefault(logger)
	sourceFlag, sourceValue, fromModule, err := chosenSource(sources, sourceValues, cf.Path)
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit: %v\n", err)
		return 1
	}
	var files *FilesSource
	switch {
	case fromModule && cf.HasOverrides():
		fmt.Fprintf(env.Stderr, "conduit: --set and --unset override keys of config files; --%s reads no file\n", sourceFlag.Name)
		return 1
	case !fromModule:
		if files, err = cf.Source(env); err != nil {
			logger.Error("config", "err", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP is caught before any listener opens: a SIGHUP sent as soon as the port answers
	// must reload, never kill the process (its default action); it waits in hup until the
	// reload loop below runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR2 (binary upgrade) likewise: its default action would kill the process.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	ups, err := newUpgrades(env, logger)
	if err != nil {
		logger.Error("upgrade hand-off", "err", err)
		return 1
	}
	defer ups.removePID()
	bindHost, bindPort, err := server.ParseBindFlag(*bind)
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit: %v\n", err)
		return 1
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	var src core.ConfigSource = files
	if fromModule {
		src, err = sourceFlag.Open(SourceContext{Env: env, Logger: logger, Done: serveCtx.Done()}, sourceValue)
		if err != nil {
			fmt.Fprintf(env.Stderr, "conduit: --%s: %v\n", sourceFlag.Name, err)
			return 1
		}
	}
	sopts := server.Options{BindHost: bindHost, BindPort: bindPort, Logger: logger, Source: src}
	ups.serverOptions(&sopts)
	ups.ctx, ups.drain = serveCtx, stopServing
	srv := server.New(sopts)
	g, d, err := server.LoadSource(ctx, src, srv.BuildOptions())
	if err != nil {
		server.Report(src, nil, err)
		logger.Error("config", "err", err)
		return 1
	}
	if g != nil && g.ProcessLogJSON() {
		// From here on the process log is JSON lines, like the access log it sits beside.
		plog.useJSON()
	}
	for _, w := range d.Warnings() {
		logger.Warn(w.Message, "path", w.Where())
	}
	if d.HasErrors() {
		server.Report(src, d, d.Err())
		for _, e := range d.Errors() {
			fmt.Fprintln(env.Stderr, e.String())
		}
		return 1
	}
	if err := srv.Start(g); err != nil {
		server.Report(src, d, err)
		logger.Error("start", "err", err)
		return 1
	}
	server.Report(src, d, nil)
	srv.LogStarted(g, src.String())
	releaseStartupPages(logger)
	stopGCFloor := startGCFloor(env.LookupEnv, logger)
	defer stopGCFloor()
	if addr, ok := env.LookupEnv("CONDUIT_PPROF"); ok && addr != "" {
		startPprof(addr, logger)
	}
	var api *admin.API
	if adm := g.Global.Admin; adm != nil && adm.Bind != "" {
		api, err = admin.Start(adm.Bind, admin.Options{Server: srv, Shutdown: stopServing, Logger: logger, Version: Version(),
			Listen: ups.sockets.Listen, Upgrade: ups.upgrade})
		if err != nil {
			logger.Error("admin API", "err", err)
			_ = srv.Shutdown(context.Background())
			return 1
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = api.Close(cctx)
		}()
	}
	if err := ups.started(g); err != nil {
		logger.Error("start", "err", err)
		_ = srv.Shutdown(context.Background())
		return 1
	}
	go ups.onSignal(serveCtx, usr2)
	go func() {
		for range hup {
			reload(serveCtx, srv)
		}
	}()
	if w, ok := src.(core.ConfigWatcher); ok {
		if err := w.Watch(serveCtx, func() { reload(serveCtx, srv) }); err != nil {
			logger.Error("config source watch", "source", src.String(), "err", err)
			_ = srv.Shutdown(context.Background())
			return 1
		}
	} else if files != nil && watchesConfig(g) {
		stopWatch, err := watchConfig(files.Paths, func() { reload(serveCtx, srv) }, logger)
		if err != nil {
			logger.Warn("config file watch not started", "err", err)
		} else {
			defer stopWatch()
		}
	}
	if err := srv.Wait(serveCtx); err != nil {
		logger.Error("serve", "err", err)
		_ = srv.Shutdown(context.Background())
		return 1
	}
	if ups.handedOver() && api != nil {
		// The new process serves the Admin API on the same socket: stop answering on it first.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = api.Close(cctx)
		cancel()
	}
	logger.Info("shutting down", "timeout", srv.Current().Global.ShutdownTimeout())
	start := time.Now()
	if err := srv.Shutdown(context.Background()); err != nil {
		logger.Warn("shutdown incomplete", "err", err)
	}
	logger.Info("stopped", "after", time.Since(start).Round(time.Millisecond))
	return 0
}

// reload rebuilds the generation from the server's source and swaps it in; a bad config keeps the
// running one. server.Reload logs the outcome, every warning and every error.
func reload(ctx context.Context, srv *server.Server) {
	_, _ = srv.Reload(ctx)
}

// newLogger makes the process log at the level logLevel decides: text lines on stderr
// until the config asks for JSON (processLog.useJSON).
func newLogger(env *Env, level string) (*processLog, error) {
	lv, err := logLevel(env, level)
	if err != nil {
		return nil, err
	}
	return newProcessLog(env.Stderr, &slog.HandlerOptions{Level: lv}), nil
}
