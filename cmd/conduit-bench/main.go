// Command conduit-bench runs Conduit side by side with nginx, Caddy and HAProxy in front of
// the same upstream, each pinned to the same CPU, and reports req/s, proxy CPU µs per request,
// added latency at a fixed rate and RSS. `make bench` runs it; docs/benchmarks.md describes the
// method and records results.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config holds the command-line settings.
type config struct {
	peers          []string
	modes          []string
	rounds         int
	duration       time.Duration
	warmup         time.Duration
	conns          int
	rate           int
	rateClients    int
	bodyBytes      int
	cpuProxy       int
	cpuLoad        int
	quietPct       float64
	quietWait      time.Duration
	noisyPct       float64
	retries        int
	out            string
	install        bool
	conduitBin     string
	conduitFullBin string
	conduitAltBin  string
	h2Clients      int
	h2Streams      int
	sizes          bool
	repo           string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "conduit-bench:", err)
		os.Exit(2)
	}
	go stopOnSignal()
	err = run(cfg)
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conduit-bench:", err)
		os.Exit(1)
	}
}

// stopOnSignal stops every started process on Ctrl-C/SIGTERM and exits.
func stopOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	s := <-ch
	fmt.Fprintf(os.Stderr, "\nconduit-bench: %v: stopping every started process\n", s)
	stopAll()
	os.Exit(130)
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("conduit-bench", flag.ContinueOnError)
	peers := fs.String("peers", "peers", "rows to run, from: "+targetNames()+"; aliases: peers (direct,conduit,nginx,caddy,haproxy), floors (gostd,gofloor,goloop), variants (every conduit-* row), all")
	modes := fs.String("modes", "h1,rate", "modes to run, from: "+modeNames())
	fs.IntVar(&c.rounds, "rounds", 3, "interleaved rounds; the report shows medians")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "unmeasured warm-up before each run (0 to skip)")
	fs.IntVar(&c.conns, "conns", 50, "h1: wrk connections (one thread)")
	fs.IntVar(&c.rate, "rate", 5000, "rate: total offered req/s")
	fs.IntVar(&c.rateClients, "rate-clients", 10, "rate: h2load connections sharing the rate")
	fs.IntVar(&c.bodyBytes, "body", 128, "upstream response body size in bytes")
	fs.IntVar(&c.cpuProxy, "cpu-proxy", 0, "CPU the proxy under test is pinned to")
	fs.IntVar(&c.cpuLoad, "cpu-load", 1, "CPU the load generator and upstream are pinned to")
	fs.Float64Var(&c.quietPct, "quiet-pct", 10, "before each run, wait until other processes use less than this % of a core")
	fs.DurationVar(&c.quietWait, "quiet-wait", 30*time.Second, "longest wait for a quiet machine before running anyway")
	fs.Float64Var(&c.noisyPct, "noisy-pct", 10, "a run during which other processes, or the hypervisor (steal), took more than this % of a core is retried")
	fs.IntVar(&c.retries, "retries", 2, "retries of a noisy run (the least noisy attempt is kept)")
	fs.StringVar(&c.out, "out", os.TempDir(), "directory under which a results dir is created")
	fs.BoolVar(&c.install, "install", false, "apt-get install missing peers and load generators first")
	fs.StringVar(&c.conduitBin, "conduit-bin", "", "use this Conduit binary instead of building ./cmd/conduit")
	fs.StringVar(&c.conduitFullBin, "conduit-full-bin", "", "use this binary instead of building ./cmd/conduit-full (rows that need the full bundle)")
	fs.StringVar(&c.conduitAltBin, "conduit-alt-bin", "", "the conduit-alt row runs this binary with the plain config (A/B of two builds)")
	fs.IntVar(&c.h2Clients, "h2-clients", 5, "h2c/h2tls: h2load connections")
	fs.IntVar(&c.h2Streams, "h2-streams", 10, "h2c/h2tls: concurrent streams per connection")
	fs.BoolVar(&c.sizes, "sizes", false, "only build minimal, standard and full (stripped) and report their sizes against the budgets")
	fs.StringVar(&c.repo, "repo", ".", "module root to build ./cmd/conduit from")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: conduit-bench [flags]\n\nRows:\n")
		for _, t := range allTargets {
			fmt.Fprintf(fs.Output(), "  %-18s %s\n", t.Name, t.Note)
		}
		fmt.Fprintf(fs.Output(), "Modes:\n")
		for _, m := range allModes {
			fmt.Fprintf(fs.Output(), "  %-10s %s\n", m.Name, m.Desc)
		}
		fmt.Fprintf(fs.Output(), "Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.peers, c.modes = expandPeers(splitList(*peers)), splitList(*modes)
	return c, c.validate()
}

// validate checks names and numbers given on the command line.
func (c config) validate() error {
	var errs []error
	for _, p := range c.peers {
		if _, ok := findTarget(p); !ok {
			errs = append(errs, fmt.Errorf("unknown peer %q (known: %s)", p, targetNames()))
		}
	}
	for _, m := range c.modes {
		if _, ok := findMode(m); !ok {
			errs = append(errs, fmt.Errorf("unknown mode %q (known: %s)", m, modeNames()))
		}
	}
	if len(c.peers) == 0 || len(c.modes) == 0 {
		errs = append(errs, errors.New("-peers and -modes must not be empty"))
	}
	if c.rounds < 1 || c.duration < time.Second || c.conns < 1 || c.rate < 1 || c.rateClients < 1 || c.h2Clients < 1 || c.h2Streams < 1 {
		errs = append(errs, errors.New("-rounds, -conns, -rate, -rate-clients, -h2-clients, -h2-streams must be ≥ 1 and -duration ≥ 1s"))
	}
	if c.cpuProxy == c.cpuLoad {
		errs = append(errs, errors.New("-cpu-proxy and -cpu-load must differ"))
	}
	return errors.Join(errs...)
}

// expandPeers replaces the aliases of peerAliases by their rows, dropping repeats.
func expandPeers(in []string) []string {
	al := peerAliases()
	var out []string
	for _, p := range in {
		names, ok := al[p]
		if !ok {
			names = []string{p}
		}
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// run is the whole benchmark: tools, results dir, Conduit build, upstream, rounds, report.
func run(cfg config) error {
	if cfg.install {
		if err := installMissing(cfg); err != nil {
			return err
		}
	}
	if err := checkTools(cfg); err != nil {
		return err
	}
	b, err := newBench(cfg)
	if err != nil {
		return err
	}
	fmt.Printf("conduit-bench: results in %s\n", b.dir)
	if cfg.sizes {
		return b.sizes()
	}
	for _, full := range []bool{false, true} {
		if b.wantsConduit(full) {
			b.buildConduit(full)
		}
	}
	b.conduitDesc = conduitVersion(b) // the tree as built, not as it is when the report is written
	if err := b.startServices(); err != nil {
		return err
	}
	defer b.svc.stop()
	if err := b.startUpstream(); err != nil {
		return err
	}
	for round := 1; round <= cfg.rounds; round++ {
		b.runRound(round)
	}
	b.upstream.stop()
	return b.writeReport()
}

// startServices makes the TLS certificate and the JWT keys (with their JWKS server), and
// starts redis-server when a selected row needs it.
func (b *bench) startServices() error {
	var err error
	if b.svc.cert, b.svc.key, b.svc.certKey, err = writeCert(b.workDir); err != nil {
		return err
	}
	if err := b.svc.startJWT(); err != nil {
		return err
	}
	if b.wantsNeed(needAuthz) {
		b.svc.startAuthz(b)
		if b.svc.authzErr != "" {
			fmt.Println("conduit-bench: authorization rows skipped:", b.svc.authzErr)
		}
	}
	if b.wantsNeed(needRedis) {
		b.svc.startRedis(b)
		if b.svc.redisErr != "" {
			fmt.Println("conduit-bench: Redis rows skipped:", b.svc.redisErr)
		}
	}
	return nil
}

// checkTools fails early when a tool every row needs is missing.
func checkTools(cfg config) error {
	need := []string{"taskset", "nginx"} // nginx is the upstream
	for _, name := range cfg.modes {
		if m, _ := findMode(name); m.Tool != "" {
			need = append(need, m.Tool)
		}
	}
	var missing []string
	for _, n := range need {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s (the upstream is nginx; run with -install)", strings.Join(missing, ", "))
	}
	return nil
}

// newBench creates the results and work dirs and writes the wrk report script.
func newBench(cfg config) (*bench, error) {
	dir := filepath.Join(cfg.out, "conduit-bench-"+time.Now().Format("20060102-150405"))
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	lua, err := templatesFS.ReadFile("templates/wrk-report.lua")
	if err != nil {
		return nil, fmt.Errorf("wrk script: %w", err)
	}
	script := filepath.Join(work, "wrk-report.lua")
	if err := os.WriteFile(script, lua, 0o644); err != nil {
		return nil, fmt.Errorf("write wrk script: %w", err)
	}
	return &bench{cfg: cfg, dir: dir, workDir: work, wrkScript: script, body: upstreamBody(cfg.bodyBytes), started: time.Now()}, nil
}
