package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// bench is the state of one harness run.
type bench struct {
	cfg          config
	dir          string // results dir
	workDir      string // configs, logs, load-generator outputs
	wrkScript    string
	body         string
	started      time.Time
	upstream     *proc
	upstreamAddr string
	upstreamEP   endpoint // the upstream's own listeners (direct rows)
	// upstreams are three more upstream listeners (balancing rows), cacheUpstream one more;
	// they answer with X-Upstream: "<port> <request id>".
	upstreams     []string
	cacheUpstream string
	svc           services
	bins          map[bool]*builtBinary // key: full bundle
	aux           []int                 // process groups of helpers (redis, tap): neither proxy nor "other"
	conduitDesc   string                // which Conduit was built, recorded when it was built
	rows          []row

	helpers map[string]*builtBinary // the harness's own programs (floor, h3load), built on first use
}

// builtBinary is a Conduit binary built (or given) for this run.
type builtBinary struct {
	path string
	err  error
}

// row is one measured (or failed/skipped) run: one target, one mode, one round.
type row struct {
	Round      int
	Mode       string
	Target     string
	Status     string // ok, failed, skipped
	Reason     string
	RPS        float64
	Requests   int64
	Errors     int64
	CPUusReq   float64 // proxy CPU µs per request
	ProxyPct   float64 // proxy CPU, % of one core
	LoadPct    float64 // load generator + upstream CPU, % of one core
	P50ms      float64
	P99ms      float64
	P999ms     float64
	IdleRSSMiB float64
	PeakRSSMiB float64
	AuxPct     float64 // CPU of helpers (redis-server, conduit tap), % of one core
	OtherPct   float64 // CPU of processes not ours during the run, % of one core
	StealPct   float64 // CPU time the hypervisor took from the machine during the run, % of one core
	QuietPct   float64 // same, measured just before the run
	CalProxyMs float64 // CPU-speed probe on the proxy CPU just before the run (lower is faster)
	CalLoadMs  float64 // same on the load CPU
	Attempts   int
}

// wantsConduit reports whether a selected row runs a Conduit binary (full bundle or not).
func (b *bench) wantsConduit(full bool) bool {
	for _, p := range b.cfg.peers {
		if t, ok := findTarget(p); ok && t.variant != nil && t.variant.Full == full {
			return true
		}
		if t, ok := findTarget(p); ok && !full && t.variant != nil && t.variant.Needs&needTap != 0 {
			return true // the tap client is the standard binary
		}
	}
	return false
}

// wantsListener reports whether a selected mode loads the given listener kind.
func (b *bench) wantsListener(kind string) bool {
	for _, name := range b.cfg.modes {
		if m, ok := findMode(name); ok && m.Listener == kind {
			return true
		}
	}
	return false
}

// wantsNeed reports whether a selected Conduit row needs the shared service n.
func (b *bench) wantsNeed(n needs) bool {
	for _, p := range b.cfg.peers {
		if t, ok := findTarget(p); ok && t.variant != nil && t.variant.Needs&n != 0 {
			return true
		}
	}
	return false
}

// buildConduit builds ./cmd/conduit (full=false) or ./cmd/conduit-full the way releases are
// built, or uses -conduit-bin / -conduit-full-bin. A failure only marks those rows failed.
func (b *bench) buildConduit(full bool) {
	if b.bins == nil {
		b.bins = map[bool]*builtBinary{}
	}
	pkg, given, out := "./cmd/conduit", b.cfg.conduitBin, "conduit"
	if full {
		pkg, given, out = "./cmd/conduit-full", b.cfg.conduitFullBin, "conduit-full"
	}
	bb := &builtBinary{path: given}
	b.bins[full] = bb
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			bb.err = fmt.Errorf("conduit binary: %w", err)
		}
		return
	}
	bb.path = filepath.Join(b.workDir, out)
	fmt.Printf("conduit-bench: building %s\n", pkg)
	bb.err = goBuild(b.cfg.repo, bb.path, pkg)
	if bb.err != nil {
		fmt.Println("conduit-bench:", bb.err)
	}
}

// goBuild builds pkg the way releases are built: static, stripped, -trimpath, grpcnotrace.
func goBuild(repo, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as goreleaser and xbuild build it
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s failed: %v: %s", pkg, err, firstLines(string(o), 3))
	}
	return nil
}

// conduitBinary returns the built binary (full bundle or standard) or why there is none.
func (b *bench) conduitBinary(full bool) (string, error) {
	bb := b.bins[full]
	if bb == nil {
		return "", fmt.Errorf("conduit binary (full=%v) was not built", full)
	}
	return bb.path, bb.err
}

// startUpstream starts the nginx upstream on the load CPU.
func (b *bench) startUpstream() error {
	d, err := b.tmplDataFor("upstream")
	if err != nil {
		return err
	}
	extra, err := freePorts(4)
	if err != nil {
		return err
	}
	d.Upstreams = []string{addrOf(extra[0]), addrOf(extra[1]), addrOf(extra[2])}
	d.CacheUpstream = addrOf(extra[3])
	p, err := startNginx("upstream", "nginx-upstream.conf.tmpl", b.cfg.cpuLoad, d)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	b.upstream, b.upstreamAddr, b.upstreamEP = p, d.Listen, endpointOf(d)
	b.upstreams, b.cacheUpstream = d.Upstreams, d.CacheUpstream
	for _, a := range append([]string{d.Listen, d.H2CListen, d.TLSListen, d.CacheUpstream}, d.Upstreams...) {
		if a == "" {
			continue
		}
		if err := waitListening(p, a, 10*time.Second); err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
	}
	for _, a := range append([]string{d.Listen, d.CacheUpstream}, d.Upstreams...) {
		if err := checkOneRequest(endpoint{h1: a}, b.body); err != nil {
			return fmt.Errorf("upstream %s: %w", a, err)
		}
	}
	return nil
}

// runRound runs every selected target once, in an order rotated by round so that no
// target always runs first or last.
func (b *bench) runRound(round int) {
	n := len(b.cfg.peers)
	for i := 0; i < n; i++ {
		name := b.cfg.peers[(i+round-1)%n]
		t, _ := findTarget(name)
		fmt.Printf("conduit-bench: round %d/%d: %s\n", round, b.cfg.rounds, name)
		b.rows = append(b.rows, b.runTarget(round, t)...)
	}
}

// runTarget starts t (unless direct), runs every mode against it and stops it.
func (b *bench) runTarget(round int, t Target) []row {
	b.aux = b.aux[:0]
	if b.svc.redis != nil {
		b.aux = append(b.aux, b.svc.redis.pid())
	}
	if b.svc.authz != nil {
		b.aux = append(b.aux, b.svc.authz.pid())
	}
	if reason := t.unavailable(b); reason != "" {
		return b.allModes(round, t.Name, "skipped", reason)
	}
	if t.start == nil {
		return b.runModes(round, t.Name, nil, b.upstreamEP)
	}
	d, err := b.tmplDataFor(fmt.Sprintf("%s-r%d", t.Name, round))
	if err != nil {
		return b.allModes(round, t.Name, "failed", err.Error())
	}
	if t.h1Only {
		d.H2CListen, d.H2CPort, d.TLSListen, d.TLSPort, d.H3 = "", 0, "", 0, false
	}
	d.H3 = d.H3 && t.h3
	p, err := t.start(b, d)
	if err != nil {
		return b.allModes(round, t.Name, "failed", err.Error())
	}
	defer p.stop()
	ep := endpointOf(d)
	if d.H3 {
		ep.h3 = d.TLSListen // UDP at the TLS port; h3load waits for it with its first request
	}
	for _, a := range []string{ep.h1, ep.h2c, ep.tls} {
		if a == "" {
			continue
		}
		if err := waitListening(p, a, 15*time.Second); err != nil {
			return b.allModes(round, t.Name, "failed", err.Error())
		}
	}
	if v := t.variant; v != nil {
		if tok := b.svc.token(v.Auth); tok != "" {
			ep.headers = []string{"Authorization: Bearer " + tok}
		}
		if why := configProblems(p); why != "" {
			return b.allModes(round, t.Name, "failed", "config not taken as written: "+why)
		}
	}
	if err := checkOneRequest(ep, b.body); err != nil {
		return b.allModes(round, t.Name, "failed", fmt.Sprintf("%v; log: %s", err, logHints(p)))
	}
	if v := t.variant; v != nil {
		if v.Check != nil {
			if err := v.Check(b, ep); err != nil {
				return b.allModes(round, t.Name, "failed", fmt.Sprintf("%v; log: %s", err, logHints(p)))
			}
		}
		if v.Needs&needTap != 0 {
			tp, err := b.startTap(d, ep)
			if err != nil {
				return b.allModes(round, t.Name, "failed", "tap: "+err.Error())
			}
			defer tp.stop()
			b.aux = append(b.aux, tp.pid())
		}
	}
	time.Sleep(200 * time.Millisecond)
	idle := mib(groupMemKiB(p.pid(), "VmRSS"))
	rows := b.runModes(round, t.Name, p, ep)
	peak := mib(groupMemKiB(p.pid(), "VmHWM"))
	for i := range rows {
		rows[i].IdleRSSMiB, rows[i].PeakRSSMiB = idle, peak
	}
	return rows
}

// allModes makes one non-measured row per mode.
func (b *bench) allModes(round int, target, status, reason string) []row {
	fmt.Printf("conduit-bench:   %s %s: %s\n", target, status, reason)
	var rows []row
	for _, m := range b.cfg.modes {
		rows = append(rows, row{Round: round, Mode: m, Target: target, Status: status, Reason: reason})
	}
	return rows
}

// runModes runs each selected mode against ep; p is the proxy (nil for direct).
func (b *bench) runModes(round int, target string, p *proc, ep endpoint) []row {
	var rows []row
	for _, name := range b.cfg.modes {
		m, _ := findMode(name)
		if ep.addr(m.Listener) == "" {
			status := "failed"
			if t, _ := findTarget(target); t.h1Only || (m.Listener == "h3" && !t.h3) {
				status = "skipped"
			}
			rows = append(rows, row{Round: round, Mode: m.Name, Target: target, Status: status, Reason: "no " + m.Listener + " listener"})
			continue
		}
		r := b.runWithRetries(round, target, m, p, ep)
		fmt.Printf("conduit-bench:   %-5s %s\n", m.Name, r.brief())
		rows = append(rows, r)
	}
	return rows
}

// runWithRetries waits for a quiet machine, runs once, and retries when other processes or
// the hypervisor (steal) took more than noisyPct of a core during the run; it keeps the least
// noisy attempt.
func (b *bench) runWithRetries(round int, target string, m Mode, p *proc, ep endpoint) row {
	var best row
	for attempt := 1; attempt <= b.cfg.retries+1; attempt++ {
		r := b.runOnce(round, target, m, p, ep, attempt)
		r.Attempts = attempt
		if attempt == 1 || (r.Status == "ok" && (best.Status != "ok" || r.noise() < best.noise())) {
			best = r
		}
		if r.Status != "ok" || (r.OtherPct <= b.cfg.noisyPct && r.StealPct <= b.cfg.noisyPct) {
			break
		}
		if attempt == b.cfg.retries+1 {
			fmt.Printf("conduit-bench:   %s %s: other processes used %.0f%% and steal %.0f%% of a core; no retry left, keeping the least noisy attempt\n", target, m.Name, r.OtherPct, r.StealPct)
			break
		}
		fmt.Printf("conduit-bench:   %s %s: other processes used %.0f%% and steal %.0f%% of a core, retrying\n", target, m.Name, r.OtherPct, r.StealPct)
	}
	best.Attempts = max(best.Attempts, 1)
	return best
}

// runOnce is one measured run: quiet check, warm-up, measured load with CPU sampling.
func (b *bench) runOnce(round int, target string, m Mode, p *proc, ep endpoint, attempt int) row {
	r := row{Round: round, Mode: m.Name, Target: target, Status: "failed"}
	r.QuietPct = b.waitQuiet(p)
	r.CalProxyMs, r.CalLoadMs = cpuSpeedMs(b.cfg.cpuProxy), cpuSpeedMs(b.cfg.cpuLoad)
	if err := m.warmup(b, ep); err != nil {
		r.Reason = "warm-up: " + err.Error()
		return r
	}
	pg := 0
	if p != nil {
		pg = p.pid()
	}
	a := sampleCPU(pg, b.upstream.pid(), b.aux)
	res, loadSec, err := m.measure(b, ep, fmt.Sprintf("%s-%s-r%d-a%d", target, m.Name, round, attempt))
	z := sampleCPU(pg, b.upstream.pid(), b.aux)
	if err != nil {
		r.Reason = err.Error()
		return r
	}
	d := delta(a, z)
	r.fill(res, d, loadSec, p != nil)
	if res.requests == 0 || res.errors > res.requests {
		r.Status, r.Reason = "failed", fmt.Sprintf("%d requests served, %d errors", res.requests, res.errors)
	}
	return r
}

// fill copies a load result and CPU deltas into the row.
func (r *row) fill(res loadResult, d cpuDelta, loadSec float64, proxied bool) {
	r.Status = "ok"
	r.RPS, r.Requests, r.Errors = res.rps, res.requests, res.errors
	r.P50ms, r.P99ms, r.P999ms = res.p50us/1000, res.p99us/1000, res.p999us/1000
	r.OtherPct = d.otherPct()
	r.StealPct = d.stealPct()
	if d.elapsed > 0 {
		r.LoadPct = 100 * (d.upstream + loadSec) / d.elapsed
		r.ProxyPct = 100 * d.proxy / d.elapsed
		r.AuxPct = 100 * d.aux / d.elapsed
	}
	if proxied && res.requests > 0 {
		r.CPUusReq = d.proxy * 1e6 / float64(res.requests)
	}
	if res.errors > 0 {
		r.Reason = fmt.Sprintf("%d errors", res.errors)
	}
}

// noise is the CPU others took during the run (processes not ours and the hypervisor's
// steal), in percent of one core.
func (r row) noise() float64 { return r.OtherPct + r.StealPct }

// brief is a one-line progress summary of a row.
func (r row) brief() string {
	if r.Status != "ok" {
		return r.Status + ": " + r.Reason
	}
	return fmt.Sprintf("%.0f req/s, %s µs/req, p50 %.3f p99 %.3f p99.9 %.3f ms, other %.0f%%, steal %.0f%%",
		r.RPS, dashIf(r.CPUusReq == 0, "%.1f", r.CPUusReq), r.P50ms, r.P99ms, r.P999ms, r.OtherPct, r.StealPct)
}

// waitQuiet waits until processes that are not ours use less than quietPct of a core
// (1 s samples), at most quietWait; it returns the last measured %.
func (b *bench) waitQuiet(p *proc) float64 {
	pg := 0
	if p != nil {
		pg = p.pid()
	}
	deadline := time.Now().Add(b.cfg.quietWait)
	announced := false
	for {
		a := sampleCPU(pg, b.upstream.pid(), b.aux)
		time.Sleep(time.Second)
		pct := delta(a, sampleCPU(pg, b.upstream.pid(), b.aux)).otherPct()
		if pct < b.cfg.quietPct {
			return pct
		}
		if time.Now().After(deadline) {
			fmt.Printf("conduit-bench:   machine still busy (other %.0f%% of a core) after %s; running anyway\n", pct, b.cfg.quietWait)
			return pct
		}
		if !announced {
			fmt.Printf("conduit-bench:   waiting for a quiet machine (other %.0f%% of a core)\n", pct)
			announced = true
		}
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}
