// Command xbuild builds a custom Conduit binary from a bundle or a list of features plus
// third-party modules:
//
//	xbuild [build] [--bundle minimal|standard|full] [--features a,b,c]
//	       [--with module[@version][=replacement]]... [--core <dir|version>]
//	       [--output FILE] [--os GOOS] [--arch GOARCH] [--tags t1,t2] [--keep] [-v] [--dry-run]
//	xbuild features [--core <dir|version>]
//
// See docs/building.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/conduitproxy/conduit/xbuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes a command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "build":
			args = args[1:]
		case "features":
			return listFeatures(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("xbuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts xbuild.Options
	var features, tags string
	var verbose bool
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "xbuild:", err)
		return 1
	}
	fs.StringVar(&opts.Bundle, "bundle", "", "bundle: minimal, standard or full (default standard, or minimal with --features)")
	fs.StringVar(&features, "features", "", "comma-separated features added to the bundle (see `xbuild features`)")
	fs.Func("with", "third-party module: module[@version][=replacement] (repeatable)", func(s string) error {
		p, err := xbuild.ParseWith(s, wd)
		if err != nil {
			return err
		}
		opts.With = append(opts.With, p)
		return nil
	})
	fs.StringVar(&opts.Core, "core", "", "core: a directory or a version (default: this checkout, or the core of the plugin module here)")
	fs.StringVar(&opts.Output, "output", "", "output binary (default ./conduit in the working directory; ignored by this repository's .gitignore)")
	fs.StringVar(&opts.Output, "o", "", "shorthand for --output")
	fs.StringVar(&opts.GOOS, "os", "", "target GOOS (default: $GOOS or this system)")
	fs.StringVar(&opts.GOARCH, "arch", "", "target GOARCH (default: $GOARCH or this system)")
	fs.StringVar(&tags, "tags", "", "extra build tags, comma-separated (grpcnotrace is always set)")
	fs.BoolVar(&opts.Keep, "keep", false, "keep the temporary build directory")
	fs.BoolVar(&verbose, "v", false, "print the go commands and their output")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	dryRun := fs.Bool("dry-run", false, "resolve the core, bundle and features and print the packages the binary would import, without building")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xbuild: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	opts.Features = splitList(features)
	opts.Tags = splitList(tags)
	opts.Dir = wd
	if verbose {
		opts.Log = stderr
	}
	if !*quiet {
		opts.Progress = stderr
	}
	if *dryRun {
		return printPlan(ctx, opts, stdout, stderr)
	}
	res, err := xbuild.Build(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "xbuild:", err)
		if res != nil && res.Dir != "" {
			fmt.Fprintln(stderr, "xbuild: build directory kept at", res.Dir)
		}
		return 1
	}
	fmt.Fprintf(stdout, "built %s (%.2f MB)\n", res.Output, float64(res.Size)/1e6)
	for _, m := range res.Modules {
		line := "  " + m.ID + " (" + m.Feature + ")"
		if m.Version != "" {
			line += " " + m.Version
		}
		fmt.Fprintln(stdout, line)
	}
	if res.Dir != "" {
		fmt.Fprintln(stdout, "build directory:", res.Dir)
	}
	return 0
}

// printPlan prints what a build would import (--dry-run).
func printPlan(ctx context.Context, opts xbuild.Options, stdout, stderr io.Writer) int {
	p, err := xbuild.DryRun(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "xbuild:", err)
		return 1
	}
	fmt.Fprintln(stdout, "core:", p.Core)
	for _, imp := range p.Imports {
		fmt.Fprintln(stdout, "import:", imp)
	}
	return 0
}

// listFeatures prints the features the core's bundles declare.
func listFeatures(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xbuild features", flag.ContinueOnError)
	fs.SetOutput(stderr)
	core := fs.String("core", "", "core directory (default: this checkout)")
	if fs.Parse(args) != nil {
		return 2
	}
	dir := *core
	if dir == "" {
		var err error
		dir, err = xbuild.CoreDir(ctx, "")
		if err != nil {
			fmt.Fprintln(stderr, "xbuild:", err)
			return 1
		}
	}
	set, err := xbuild.LoadFeatures(dir)
	if err != nil {
		fmt.Fprintln(stderr, "xbuild:", err)
		return 1
	}
	for _, f := range set.All() {
		fmt.Fprintf(stdout, "%-12s %-9s %s\n", f.Name, f.Bundle, f.Package)
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
