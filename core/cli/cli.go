// Package cli is the `conduit` command. Modules add their own subcommands with
// RegisterCommand, so a custom build's CLI matches its features.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/config"
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
}

// Env is what a command runs with: its streams and the environment lookup.
type Env struct {
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
	// Dir is the working directory used for config discovery.
	Dir string
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
	RegisterCommand(Command{Name: "version", Summary: "print the version and the compiled-in modules", Run: runVersion})
	RegisterCommand(Command{Name: "help", Summary: "show this help", Run: runHelp})
	RegisterCommand(Command{Name: "run", Summary: "serve (the default when no command is given)", Run: runServe})
}

// Main runs the command line and exits.
func Main() {
	wd, _ := os.Getwd()
	os.Exit(Run(&Env{Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv, Dir: wd}, os.Args[1:]))
}

// Run executes a command line (without the program name) and returns the exit code.
func Run(env *Env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help":
			return runHelp(env, nil)
		case "-V", "--version":
			return runVersion(env, nil)
		}
		if !strings.HasPrefix(args[0], "-") {
			commands.Lock()
			c, ok := commands.m[args[0]]
			commands.Unlock()
			if !ok {
				fmt.Fprintf(env.Stderr, "conduit: unknown command %q (see `conduit help`)\n", args[0])
				return 1
			}
			return c.Run(env, args[1:])
		}
	}
	return runServe(env, args)
}

// ConfigFlags are the flags every config-reading command takes.
type ConfigFlags struct {
	Path string
}

// Register adds -c/--config to fs.
func (c *ConfigFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Path, "c", "", "config file (default: conduit.json, conduit.yaml or conduit.yml)")
	fs.StringVar(&c.Path, "config", "", "config file")
}

// Resolve returns the config path: the flag, or discovery in env.Dir.
func (c *ConfigFlags) Resolve(env *Env) (string, error) {
	if c.Path != "" {
		return c.Path, nil
	}
	return config.Discover(env.Dir)
}

// Load reads the config file named by the flags.
func (c *ConfigFlags) Load(env *Env) (*config.Document, error) {
	p, err := c.Resolve(env)
	if err != nil {
		return nil, err
	}
	return config.LoadFile(p, env.LookupEnv)
}

// NewFlagSet returns a flag set for a subcommand that reports errors to env.Stderr.
func NewFlagSet(env *Env, name string) *flag.FlagSet { return newFlagSet(env, name) }

func newFlagSet(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("conduit "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

func runValidate(env *Env, args []string) int {
	fs := newFlagSet(env, "validate")
	var cf ConfigFlags
	cf.Register(fs)
	if fs.Parse(args) != nil {
		return 1
	}
	doc, err := cf.Load(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	g, d := server.Build(context.Background(), doc, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
	for _, w := range d.Warnings() {
		fmt.Fprintln(env.Stderr, w.String())
	}
	if errs := d.Errors(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(env.Stdout, e.String())
		}
		// The wording docs/configuration.md quotes ("validate footer"); scripts may match on it.
		fmt.Fprintf(env.Stdout, "%d errors found.\n", len(errs))
		return 1
	}
	g.Stop(context.Background())
	fmt.Fprintf(env.Stdout, "Config is valid — %d sites, %d routes.\n", len(g.Sites), g.Routes)
	return 0
}

func runVersion(env *Env, args []string) int {
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

func runHelp(env *Env, args []string) int {
	fmt.Fprintln(env.Stdout, "Conduit — reverse proxy and API gateway")
	fmt.Fprintln(env.Stdout, "")
	fmt.Fprintln(env.Stdout, "usage: conduit [-c FILE] [command] [flags]")
	fmt.Fprintln(env.Stdout, "")
	fmt.Fprintln(env.Stdout, "commands:")
	commands.Lock()
	names := make([]string, 0, len(commands.m))
	for n := range commands.m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(env.Stdout, "  %-10s %s\n", n, commands.m[n].Summary)
	}
	commands.Unlock()
	fmt.Fprintln(env.Stdout, "")
	fmt.Fprintln(env.Stdout, "Without -c, conduit looks for conduit.json, conduit.yaml, then conduit.yml.")
	fmt.Fprintln(env.Stdout, "Environment: CONDUIT_LOG (debug|info|warn|error, default info); RUST_LOG is read when CONDUIT_LOG is unset.")
	return 0
}

func runServe(env *Env, args []string) int {
	fs := newFlagSet(env, "run")
	var cf ConfigFlags
	cf.Register(fs)
	bind := fs.String("bind", "", "HOST or HOST:PORT the listeners of sites without a bind key bind to; a PORT replaces their port key (default: all interfaces, the configured ports)")
	logLevel := fs.String("log-level", "", "process log level: debug, info, warn, error (default $CONDUIT_LOG, then $RUST_LOG, then info)")
	if fs.Parse(args) != nil {
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "conduit: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	logger, err := newLogger(env, *logLevel)
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit: %v\n", err)
		return 1
	}
	slog.SetDefault(logger)
	path, err := cf.Resolve(env)
	if err != nil {
		logger.Error("config", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP is caught before any listener opens: a SIGHUP sent as soon as the port answers
	// must reload, never kill the process (its default action); it waits in hup until the
	// reload loop below runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	bindHost, bindPort, err := server.ParseBindFlag(*bind)
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit: %v\n", err)
		return 1
	}
	srv := server.New(server.Options{BindHost: bindHost, BindPort: bindPort, Logger: logger})
	g, d, err := server.LoadAndBuild(ctx, path, srv.BuildOptions())
	if err != nil {
		logger.Error("config", "err", err)
		return 1
	}
	for _, w := range d.Warnings() {
		logger.Warn(w.Message, "path", w.Path)
	}
	if d.HasErrors() {
		for _, e := range d.Errors() {
			fmt.Fprintln(env.Stderr, e.String())
		}
		return 1
	}
	if err := srv.Start(g); err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	srv.LogStarted(g, path)
	if addr, ok := env.LookupEnv("CONDUIT_PPROF"); ok && addr != "" {
		startPprof(addr, logger)
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	if adm := g.Global.Admin; adm != nil && adm.Bind != "" {
		api, err := admin.Start(adm.Bind, admin.Options{Server: srv, Shutdown: stopServing, Logger: logger})
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
	go func() {
		for range hup {
			reload(serveCtx, srv)
		}
	}()
	if watchesConfig(g) {
		stopWatch, err := watchConfig(path, func() { reload(serveCtx, srv) }, logger)
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
	logger.Info("shutting down", "timeout", srv.Current().Global.ShutdownTimeout())
	start := time.Now()
	if err := srv.Shutdown(context.Background()); err != nil {
		logger.Warn("shutdown incomplete", "err", err)
	}
	logger.Info("stopped", "after", time.Since(start).Round(time.Millisecond))
	return 0
}

// reload rebuilds the generation from the file and swaps it in; a bad config keeps the
// running one. server.Reload logs the outcome, every warning and every error.
func reload(ctx context.Context, srv *server.Server) {
	_, _ = srv.Reload(ctx)
}

// newLogger makes the process logger at the level logLevel decides.
func newLogger(env *Env, level string) (*slog.Logger, error) {
	lv, err := logLevel(env, level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lv})), nil
}
