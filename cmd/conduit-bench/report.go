package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// writeReport writes raw.tsv and summary.md to the results dir and prints the summary.
func (b *bench) writeReport() error {
	if err := os.WriteFile(filepath.Join(b.dir, "raw.tsv"), []byte(rawTSV(b.rows)), 0o644); err != nil {
		return fmt.Errorf("write raw.tsv: %w", err)
	}
	summary := b.summary()
	if err := os.WriteFile(filepath.Join(b.dir, "summary.md"), []byte(summary), 0o644); err != nil {
		return fmt.Errorf("write summary.md: %w", err)
	}
	fmt.Println()
	fmt.Print(summary)
	fmt.Printf("\nconduit-bench: raw rows in %s, summary in %s\n",
		filepath.Join(b.dir, "raw.tsv"), filepath.Join(b.dir, "summary.md"))
	return nil
}

// rawTSV renders every row, one per run, with a header line.
func rawTSV(rows []row) string {
	var sb strings.Builder
	sb.WriteString("round\tmode\ttarget\tstatus\treq_s\trequests\terrors\tcpu_us_per_req\tproxy_cpu_pct\tload_cpu_pct\t" +
		"p50_ms\tp99_ms\tp999_ms\tidle_rss_mib\tpeak_rss_mib\taux_cpu_pct\tother_pct\tquiet_pct\tcal_proxy_ms\tcal_load_ms\tattempts\tsteal_pct\treason\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%d\t%s\t%s\t%s\t%.0f\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%s\n",
			r.Round, r.Mode, r.Target, r.Status, r.RPS, r.Requests, r.Errors, r.CPUusReq, r.ProxyPct, r.LoadPct,
			r.P50ms, r.P99ms, r.P999ms, r.IdleRSSMiB, r.PeakRSSMiB, r.AuxPct, r.OtherPct, r.QuietPct, r.CalProxyMs, r.CalLoadMs, r.Attempts, r.StealPct,
			strings.ReplaceAll(r.Reason, "\t", " "))
	}
	return sb.String()
}

// stats are the medians (and req/s range) of one target in one mode over its ok rounds.
type stats struct {
	n                          int
	rps, rpsMin, rpsMax        float64
	cpu, proxyPct, loadPct     float64
	p50, p99, p999             float64
	idle, peak, otherMax       float64
	errors                     int64
	lastReason, notMeasuredWhy string
}

// statsFor aggregates the rows of target in mode.
func (b *bench) statsFor(mode, target string) stats {
	var ok []row
	var s stats
	for _, r := range b.rows {
		if r.Mode != mode || r.Target != target {
			continue
		}
		if r.Status != "ok" {
			s.notMeasuredWhy = r.Status + ": " + r.Reason
			continue
		}
		ok = append(ok, r)
	}
	s.n = len(ok)
	if s.n == 0 {
		return s
	}
	col := func(f func(row) float64) float64 { return median(ok, f) }
	s.rps, s.cpu = col(func(r row) float64 { return r.RPS }), col(func(r row) float64 { return r.CPUusReq })
	s.proxyPct, s.loadPct = col(func(r row) float64 { return r.ProxyPct }), col(func(r row) float64 { return r.LoadPct })
	s.p50, s.p99 = col(func(r row) float64 { return r.P50ms }), col(func(r row) float64 { return r.P99ms })
	s.p999 = col(func(r row) float64 { return r.P999ms })
	s.idle, s.peak = col(func(r row) float64 { return r.IdleRSSMiB }), col(func(r row) float64 { return r.PeakRSSMiB })
	s.rpsMin, s.rpsMax = ok[0].RPS, ok[0].RPS
	for _, r := range ok {
		s.rpsMin, s.rpsMax = min(s.rpsMin, r.RPS), max(s.rpsMax, r.RPS)
		s.otherMax = max(s.otherMax, r.OtherPct)
		s.errors += r.Errors
	}
	return s
}

// median of f over rows (mean of the middle two for an even count).
func median(rows []row, f func(row) float64) float64 {
	v := make([]float64, len(rows))
	for i, r := range rows {
		v[i] = f(r)
	}
	return medianOf(v)
}

// medianOf is the median of v (mean of the middle two for an even count); it sorts v.
func medianOf(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// summary is the markdown report: facts, one table per mode, issue targets, noise.
func (b *bench) summary() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "## conduit-bench %s\n\n", b.started.Format("2006-01-02 15:04 MST"))
	sb.WriteString(b.facts())
	for _, name := range b.cfg.modes {
		m, _ := findMode(name)
		if m.FixedRate {
			sb.WriteString(b.rateTable(m))
		} else {
			sb.WriteString(b.saturationTable(m))
		}
	}
	sb.WriteString(b.targetsTable())
	sb.WriteString(b.variantCostTable())
	sb.WriteString(b.noiseNote())
	return sb.String()
}

// facts lists the command, machine and tool versions.
func (b *bench) facts() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "- command: `go run ./cmd/conduit-bench %s`\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&sb, "- rounds: %d interleaved; %s measured after %s warm-up per run; body %d bytes\n",
		b.cfg.rounds, b.cfg.duration, b.cfg.warmup, b.cfg.bodyBytes)
	fmt.Fprintf(&sb, "- CPU: %s × %d; kernel %s; harness %s\n", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version())
	fmt.Fprintf(&sb, "- proxy on CPU %d; load generator and upstream (nginx, 1 worker) on CPU %d\n", b.cfg.cpuProxy, b.cfg.cpuLoad)
	desc := b.conduitDesc
	if desc == "" {
		desc = conduitVersion(b)
	}
	fmt.Fprintf(&sb, "- conduit: %s\n", desc)
	for _, v := range toolVersions() {
		fmt.Fprintf(&sb, "- %s\n", v)
	}
	sb.WriteString("\n")
	return sb.String()
}

// saturationTable renders a saturation mode (h1): req/s, CPU per request, RSS.
func (b *bench) saturationTable(m Mode) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "### %s: %s, medians\n\n", m.Name, m.Desc)
	sb.WriteString("| proxy | req/s median [min–max] | × Caddy | CPU µs/req | p50 ms | p99 ms | p99.9 ms | idle RSS MiB | peak RSS MiB | proxy core % | load core % | errors | max other % | rounds |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	caddy := b.statsFor(m.Name, "caddy")
	var missing []string
	for _, t := range b.cfg.peers {
		s := b.statsFor(m.Name, t)
		if s.n == 0 {
			missing = append(missing, fmt.Sprintf("- %s: %s\n", t, s.notMeasuredWhy))
			continue
		}
		fmt.Fprintf(&sb, "| %s | %s [%s–%s] | %s | %s | %.2f | %.2f | %.2f | %s | %s | %s | %.0f | %d | %.0f | %d |\n",
			t, thousands(s.rps), thousands(s.rpsMin), thousands(s.rpsMax), ratio(s.rps, caddy.rps, caddy.n, t),
			dashIf(t == "direct", "%.1f", s.cpu), s.p50, s.p99, s.p999,
			dashIf(t == "direct", "%.1f", s.idle), dashIf(t == "direct", "%.1f", s.peak),
			dashIf(t == "direct", "%.0f", s.proxyPct), s.loadPct, s.errors, s.otherMax, s.n)
	}
	return sb.String() + notMeasured(missing)
}

// rateTable renders a fixed-rate mode: latency and latency added over the direct row.
func (b *bench) rateTable(m Mode) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "### %s: %s (%d req/s offered), medians\n\n", m.Name, m.Desc, b.cfg.rate)
	sb.WriteString("| proxy | p50 ms | p99 ms | p99.9 ms | +p50 | +p99 | +p99.9 | proxy CPU % | CPU µs/req | req/s | errors | max other % | rounds |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	direct := b.statsFor(m.Name, "direct")
	var missing []string
	for _, t := range b.cfg.peers {
		s := b.statsFor(m.Name, t)
		if s.n == 0 {
			missing = append(missing, fmt.Sprintf("- %s: %s\n", t, s.notMeasuredWhy))
			continue
		}
		add := func(v, base float64) string {
			if t == "direct" || direct.n == 0 {
				return "–"
			}
			return fmt.Sprintf("%+.2f", v-base)
		}
		fmt.Fprintf(&sb, "| %s | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %d | %.0f | %d |\n",
			t, s.p50, s.p99, s.p999, add(s.p50, direct.p50), add(s.p99, direct.p99), add(s.p999, direct.p999),
			dashIf(t == "direct", "%.0f", s.proxyPct), dashIf(t == "direct", "%.1f", s.cpu),
			thousands(s.rps), s.errors, s.otherMax, s.n)
	}
	return sb.String() + notMeasured(missing)
}

// targetsTable compares the "conduit" row with the targets of issue 2.
func (b *bench) targetsTable() string {
	if !slices.Contains(b.cfg.peers, "conduit") || (!slices.Contains(b.cfg.modes, "h1") && !slices.Contains(b.cfg.modes, "rate")) {
		return ""
	}
	var sb strings.Builder
	sb.WriteString("### Targets (issue 2, plain proxy path)\n\n| target | measured | verdict |\n|---|---|---|\n")
	h1c, h1caddy := b.statsFor("h1", "conduit"), b.statsFor("h1", "caddy")
	switch {
	case !slices.Contains(b.cfg.modes, "h1") || !slices.Contains(b.cfg.peers, "caddy"):
		sb.WriteString("| h1 req/s ≥ 1.3× Caddy's | not run | not measured |\n")
	case h1c.n == 0 || h1caddy.n == 0:
		fmt.Fprintf(&sb, "| h1 req/s ≥ 1.3× Caddy's | conduit %s | not measured |\n", orDash(h1c.notMeasuredWhy))
	default:
		r := h1c.rps / h1caddy.rps
		fmt.Fprintf(&sb, "| h1 req/s ≥ 1.3× Caddy's | %.2f× (%s vs %s req/s; %.1f vs %.1f µs/req) | %s |\n",
			r, thousands(h1c.rps), thousands(h1caddy.rps), h1c.cpu, h1caddy.cpu, verdict(r >= 1.3))
	}
	rc, rd := b.statsFor("rate", "conduit"), b.statsFor("rate", "direct")
	switch {
	case !slices.Contains(b.cfg.modes, "rate") || !slices.Contains(b.cfg.peers, "direct"):
		sb.WriteString("| added p99 at 5,000 req/s < 0.3 ms | not run | not measured |\n")
	case rc.n == 0 || rd.n == 0:
		fmt.Fprintf(&sb, "| added p99 at 5,000 req/s < 0.3 ms | conduit %s | not measured |\n", orDash(rc.notMeasuredWhy))
	default:
		add := rc.p99 - rd.p99
		fmt.Fprintf(&sb, "| added p99 at %s req/s < 0.3 ms | %+.2f ms | %s |\n", thousands(float64(b.cfg.rate)), add, verdict(add < 0.3))
	}
	idle := h1c
	if idle.n == 0 {
		idle = rc
	}
	if idle.n == 0 {
		fmt.Fprintf(&sb, "| idle RSS < 12 MiB | conduit %s | not measured |\n", orDash(h1c.notMeasuredWhy))
	} else {
		fmt.Fprintf(&sb, "| idle RSS < 12 MiB | %.1f MiB | %s |\n", idle.idle, verdict(idle.idle < 12))
	}
	return sb.String() + "\n"
}

// variantCostTable sets each Conduit configuration row beside the plain "conduit" row of the
// same run: what the feature costs in CPU per request, throughput and latency at the fixed rate.
func (b *bench) variantCostTable() string {
	if !slices.Contains(b.cfg.peers, "conduit") {
		return ""
	}
	var rows []string
	for _, v := range conduitVariants[1:] {
		if !slices.Contains(b.cfg.peers, v.Name) {
			continue
		}
		cells := []string{v.Name, fmt.Sprintf("#%d", v.Issue)}
		for _, name := range b.cfg.modes {
			m, _ := findMode(name)
			base, s := b.statsFor(name, "conduit"), b.statsFor(name, v.Name)
			switch {
			case s.n == 0:
				cells = append(cells, "not measured: "+strings.ReplaceAll(s.notMeasuredWhy, "|", "/"))
			case base.n == 0:
				cells = append(cells, "no conduit row")
			case m.FixedRate:
				cells = append(cells, fmt.Sprintf("p99 %+.2f ms, %+.1f µs/req", s.p99-base.p99, s.cpu-base.cpu))
			default:
				cells = append(cells, fmt.Sprintf("%.2f× req/s, %+.1f µs/req (%.1f)%s", s.rps/base.rps, s.cpu-base.cpu, s.cpu,
					b.pairedNote(name, v.Name)))
			}
		}
		rows = append(rows, "| "+strings.Join(cells, " | ")+" |\n")
	}
	if len(rows) == 0 {
		return ""
	}
	var sb strings.Builder
	sb.WriteString("### Conduit configurations against the plain conduit row (same run, medians)\n\n| row | issue | ")
	sb.WriteString(strings.Join(b.cfg.modes, " | "))
	sb.WriteString(" |\n|---|---|" + strings.Repeat("---|", len(b.cfg.modes)) + "\n")
	sb.WriteString(strings.Join(rows, ""))
	return sb.String() + "\n"
}

// pairedCPU returns, for every round in which both the plain "conduit" row and target were
// measured in mode, target's CPU per request minus the plain row's: all such rounds, and the
// rounds in which neither run had other processes or steal above noisyPct. Rows of one
// round run minutes apart at most, so a paired difference cancels most of a slow host drift
// that medians over all rounds keep.
func (b *bench) pairedCPU(mode, target string) (all, calm []float64) {
	type key struct {
		round  int
		target string
	}
	ok := map[key]row{}
	for _, r := range b.rows {
		if r.Mode == mode && r.Status == "ok" && r.CPUusReq > 0 {
			ok[key{r.Round, r.Target}] = r
		}
	}
	for k, t := range ok {
		if k.target != target {
			continue
		}
		c, found := ok[key{k.round, "conduit"}]
		if !found {
			continue
		}
		d := t.CPUusReq - c.CPUusReq
		all = append(all, d)
		if max(t.OtherPct, t.StealPct, c.OtherPct, c.StealPct) <= b.cfg.noisyPct {
			calm = append(calm, d)
		}
	}
	return all, calm
}

// pairedNote is the " paired …" suffix of a saturation cell: the median of the per-round
// differences, over all rounds and over the calm ones.
func (b *bench) pairedNote(mode, target string) string {
	all, calm := b.pairedCPU(mode, target)
	if len(all) == 0 {
		return ""
	}
	note := fmt.Sprintf("; paired %+.1f µs/req (%d rounds)", medianOf(all), len(all))
	if len(calm) > 0 {
		note += fmt.Sprintf(", calm %+.1f (%d)", medianOf(calm), len(calm))
	} else {
		note += ", calm: none"
	}
	return note
}

// noiseNote summarises how busy the machine was and how many runs were retried.
func (b *bench) noiseNote() string {
	var others, steals, cal0, cal1 []float64
	retried, noisy := 0, 0
	for _, r := range b.rows {
		if r.Status != "ok" {
			continue
		}
		others, steals = append(others, r.OtherPct), append(steals, r.StealPct)
		cal0, cal1 = append(cal0, r.CalProxyMs), append(cal1, r.CalLoadMs)
		if r.Attempts > 1 {
			retried++
		}
		if r.OtherPct > b.cfg.noisyPct || r.StealPct > b.cfg.noisyPct {
			noisy++
		}
	}
	if len(others) == 0 {
		return "Noise: no run was measured.\n"
	}
	sort.Float64s(others)
	sort.Float64s(steals)
	sort.Float64s(cal0)
	sort.Float64s(cal1)
	return fmt.Sprintf("Noise: other processes used a median %.1f%% / max %.0f%% of a core during the %d measured runs; "+
		"the hypervisor took (steal) a median %.1f%% / max %.0f%% of a core; "+
		"%d runs were retried, %d kept with other or steal > %.0f%% after %d retries. "+
		"CPU-speed probe before each run (ms, lower is faster): proxy CPU %.0f–%.0f, load CPU %.0f–%.0f. Took %s.\n",
		others[len(others)/2], others[len(others)-1], len(others), steals[len(steals)/2], steals[len(steals)-1], retried, noisy, b.cfg.noisyPct, b.cfg.retries,
		cal0[0], cal0[len(cal0)-1], cal1[0], cal1[len(cal1)-1], time.Since(b.started).Round(time.Second))
}

func notMeasured(lines []string) string {
	if len(lines) == 0 {
		return "\n"
	}
	return "\nNot measured:\n" + strings.Join(lines, "") + "\n"
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "**not met**"
}

// ratio is v/base for a proxied row, "–" for direct or a missing base.
func ratio(v, base float64, baseN int, target string) string {
	if baseN == 0 || base == 0 || target == "direct" {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/base)
}

func dashIf(dash bool, format string, v float64) string {
	if dash {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// toolVersions asks each peer and load generator for its version (first line).
func toolVersions() []string {
	cmds := [][]string{{"nginx", "-v"}, {"caddy", "version"}, {"haproxy", "-v"}, {"wrk", "-v"}, {"h2load", "--version"}}
	var out []string
	for _, c := range cmds {
		if _, err := exec.LookPath(c[0]); err != nil {
			out = append(out, c[0]+": not installed")
			continue
		}
		b, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		out = append(out, c[0]+": "+firstLines(string(b), 1))
	}
	return out
}

// conduitVersion says which Conduit was measured: the commit of -repo (plus "dirty") or -conduit-bin.
func conduitVersion(b *bench) string {
	if b.cfg.conduitBin != "" {
		return b.cfg.conduitBin
	}
	var failed []string
	for _, full := range []bool{false, true} {
		if bb := b.bins[full]; bb != nil && bb.err != nil {
			failed = append(failed, bb.err.Error())
		}
	}
	rev, err := exec.Command("git", "-C", b.cfg.repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "built from " + b.cfg.repo
	}
	s := "commit " + strings.TrimSpace(string(rev))
	if st, err := exec.Command("git", "-C", b.cfg.repo, "status", "--porcelain", "--", "core", "modules", "cmd/conduit").Output(); err == nil && len(st) > 0 {
		s += " + uncommitted changes in core/modules"
	}
	if len(failed) > 0 {
		s += " (build failed: " + strings.Join(failed, "; ") + ")"
	}
	return s
}
