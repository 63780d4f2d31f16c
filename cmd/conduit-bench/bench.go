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
	conduitBin   string
	conduitErr   error // why Conduit rows cannot run (build failed)
	rows         []row
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
	OtherPct   float64 // CPU of processes not ours during the run, % of one core
	QuietPct   float64 // same, measured just before the run
	CalProxyMs float64 // CPU-speed probe on the proxy CPU just before the run (lower is faster)
	CalLoadMs  float64 // same on the load CPU
	Attempts   int
}

func (b *bench) wantsConduit() bool {
	for _, p := range b.cfg.peers {
		if strings.HasPrefix(p, "conduit") {
			return true
		}
	}
	return false
}

// buildConduit builds ./cmd/conduit the way releases are built, or uses -conduit-bin.
// A failure only marks the Conduit rows as failed.
func (b *bench) buildConduit() {
	if b.cfg.conduitBin != "" {
		b.conduitBin = b.cfg.conduitBin
		if _, err := os.Stat(b.conduitBin); err != nil {
			b.conduitErr = fmt.Errorf("conduit binary: %w", err)
		}
		return
	}
	b.conduitBin = filepath.Join(b.workDir, "conduit")
	fmt.Println("conduit-bench: building ./cmd/conduit")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w",
		"-o", b.conduitBin, "./cmd/conduit")
	cmd.Dir = b.cfg.repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.conduitErr = fmt.Errorf("go build ./cmd/conduit failed: %v: %s", err, firstLines(string(out), 3))
		fmt.Println("conduit-bench:", b.conduitErr)
	}
}

// startUpstream starts the nginx upstream on the load CPU.
func (b *bench) startUpstream() error {
	d, err := b.tmplDataFor("upstream")
	if err != nil {
		return err
	}
	p, err := startNginx("upstream", "nginx-upstream.conf.tmpl", b.cfg.cpuLoad, d)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	b.upstream, b.upstreamAddr = p, d.Listen
	if err := waitListening(p, d.Listen, 10*time.Second); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if err := checkOneRequest(d.Listen, b.body); err != nil {
		return fmt.Errorf("upstream: %w", err)
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
	if reason := t.unavailable(); reason != "" {
		return b.allModes(round, t.Name, "skipped", reason)
	}
	if t.start == nil {
		return b.runModes(round, t.Name, nil, b.upstreamAddr)
	}
	d, err := b.tmplDataFor(fmt.Sprintf("%s-r%d", t.Name, round))
	if err != nil {
		return b.allModes(round, t.Name, "failed", err.Error())
	}
	p, err := t.start(b, d)
	if err != nil {
		return b.allModes(round, t.Name, "failed", err.Error())
	}
	defer p.stop()
	if err := waitListening(p, d.Listen, 15*time.Second); err != nil {
		return b.allModes(round, t.Name, "failed", err.Error())
	}
	if err := checkOneRequest(d.Listen, b.body); err != nil {
		return b.allModes(round, t.Name, "failed", fmt.Sprintf("%v; log: %s", err, logHints(p)))
	}
	time.Sleep(200 * time.Millisecond)
	idle := mib(groupMemKiB(p.pid(), "VmRSS"))
	rows := b.runModes(round, t.Name, p, d.Listen)
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

// runModes runs each selected mode against addr; p is the proxy (nil for direct).
func (b *bench) runModes(round int, target string, p *proc, addr string) []row {
	var rows []row
	for _, name := range b.cfg.modes {
		m, _ := findMode(name)
		r := b.runWithRetries(round, target, m, p, addr)
		fmt.Printf("conduit-bench:   %-5s %s\n", m.Name, r.brief())
		rows = append(rows, r)
	}
	return rows
}

// runWithRetries waits for a quiet machine, runs once, and retries when other processes
// were busy during the run; it keeps the least noisy attempt.
func (b *bench) runWithRetries(round int, target string, m Mode, p *proc, addr string) row {
	var best row
	for attempt := 1; attempt <= b.cfg.retries+1; attempt++ {
		r := b.runOnce(round, target, m, p, addr, attempt)
		r.Attempts = attempt
		if attempt == 1 || (r.Status == "ok" && (best.Status != "ok" || r.OtherPct < best.OtherPct)) {
			best = r
		}
		if r.Status != "ok" || r.OtherPct <= b.cfg.noisyPct {
			break
		}
		fmt.Printf("conduit-bench:   %s %s: other processes used %.0f%% of a core, retrying\n", target, m.Name, r.OtherPct)
	}
	best.Attempts = max(best.Attempts, 1)
	return best
}

// runOnce is one measured run: quiet check, warm-up, measured load with CPU sampling.
func (b *bench) runOnce(round int, target string, m Mode, p *proc, addr string, attempt int) row {
	r := row{Round: round, Mode: m.Name, Target: target, Status: "failed"}
	r.QuietPct = b.waitQuiet(p)
	r.CalProxyMs, r.CalLoadMs = cpuSpeedMs(b.cfg.cpuProxy), cpuSpeedMs(b.cfg.cpuLoad)
	if err := m.warmup(b, addr); err != nil {
		r.Reason = "warm-up: " + err.Error()
		return r
	}
	pg := 0
	if p != nil {
		pg = p.pid()
	}
	a := sampleCPU(pg, b.upstream.pid())
	res, loadSec, err := m.measure(b, addr, fmt.Sprintf("%s-%s-r%d-a%d", target, m.Name, round, attempt))
	z := sampleCPU(pg, b.upstream.pid())
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
	if d.elapsed > 0 {
		r.LoadPct = 100 * (d.upstream + loadSec) / d.elapsed
		r.ProxyPct = 100 * d.proxy / d.elapsed
	}
	if proxied && res.requests > 0 {
		r.CPUusReq = d.proxy * 1e6 / float64(res.requests)
	}
	if res.errors > 0 {
		r.Reason = fmt.Sprintf("%d errors", res.errors)
	}
}

// brief is a one-line progress summary of a row.
func (r row) brief() string {
	if r.Status != "ok" {
		return r.Status + ": " + r.Reason
	}
	return fmt.Sprintf("%.0f req/s, %s µs/req, p50 %.3f p99 %.3f p99.9 %.3f ms, other %.0f%%",
		r.RPS, dashIf(r.CPUusReq == 0, "%.1f", r.CPUusReq), r.P50ms, r.P99ms, r.P999ms, r.OtherPct)
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
		a := sampleCPU(pg, b.upstream.pid())
		time.Sleep(time.Second)
		pct := delta(a, sampleCPU(pg, b.upstream.pid())).otherPct()
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
