package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/cmd/conduit-bench/loadstat"
)

// Mode is one way of loading a target. warmup runs unmeasured; measure runs the measured
// window and returns the load generator's result and its CPU seconds.
type Mode struct {
	Name      string
	Desc      string
	Tool      string // load generator binary on PATH; "" when the harness builds its own
	Listener  string // which listener of the target it loads: h1, h2c, tls or h3 (UDP at the TLS port)
	FixedRate bool   // latency at a fixed offered rate (added latency vs direct), not saturation
	warmup    func(b *bench, ep endpoint) error
	measure   func(b *bench, ep endpoint, tag string) (loadResult, float64, error)
}

// allModes is the ordered list -modes selects from.
var allModes = []Mode{
	{
		Name: "h1", Tool: "wrk", Listener: "h1",
		Desc:    "HTTP/1.1 keep-alive saturation: wrk -t1 -c<conns>, measured after a warm-up",
		warmup:  wrkWarmup,
		measure: wrkMeasure,
	},
	{
		Name: "rate", Tool: "h2load", Listener: "h1", FixedRate: true,
		Desc:    "HTTP/1.1 at a fixed rate: h2load --h1 -c<clients> --rps <rate/clients>",
		warmup:  rateWarmup,
		measure: rateMeasure,
	},
	{
		Name: "h2c", Tool: "h2load", Listener: "h2c",
		Desc:   "HTTP/2 cleartext (prior knowledge) saturation: h2load -c<h2-clients> -m<h2-streams>, HTTP/1.1 to the upstream",
		warmup: func(b *bench, ep endpoint) error { return h2Warmup(b, "http://"+ep.h2c+"/", ep) },
		measure: func(b *bench, ep endpoint, tag string) (loadResult, float64, error) {
			return h2Measure(b, "http://"+ep.h2c+"/", ep, tag)
		},
	},
	{
		Name: "h2tls", Tool: "h2load", Listener: "tls",
		Desc:   "HTTP/2 over TLS 1.3 (ECDSA P-256) saturation: h2load -c<h2-clients> -m<h2-streams>, HTTP/1.1 to the upstream",
		warmup: func(b *bench, ep endpoint) error { return h2Warmup(b, "https://"+ep.tls+"/", ep) },
		measure: func(b *bench, ep endpoint, tag string) (loadResult, float64, error) {
			return h2Measure(b, "https://"+ep.tls+"/", ep, tag)
		},
	},
	{
		Name: "h3", Listener: "h3",
		Desc:   "HTTP/3 (QUIC, TLS 1.3) saturation: the harness's quic-go load generator (./h3load) -c<h2-clients> -m<h2-streams>, HTTP/1.1 to the upstream",
		warmup: h3Warmup,
		measure: func(b *bench, ep endpoint, tag string) (loadResult, float64, error) {
			out, cpu, err := runH3load(b, ep, "h3load-"+tag, false)
			if err != nil {
				return loadResult{}, 0, err
			}
			r, err := parseWrk(out)
			return r, cpu, err
		},
	},
}

// findMode returns the mode called name.
func findMode(name string) (Mode, bool) {
	for _, m := range allModes {
		if m.Name == name {
			return m, true
		}
	}
	return Mode{}, false
}

// modeNames lists every known mode.
func modeNames() string {
	names := make([]string, len(allModes))
	for i, m := range allModes {
		names[i] = m.Name
	}
	return strings.Join(names, ",")
}

// secs formats a duration in whole seconds for load-generator flags (at least 1).
func secs(b *bench, warm bool) string {
	d := b.cfg.duration
	if warm {
		d = b.cfg.warmup
	}
	return strconv.Itoa(max(int(d.Seconds()+0.5), 1))
}

// headerArgs turns the endpoint's headers into repeated -H flags (wrk and h2load alike).
func headerArgs(ep endpoint) []string {
	var out []string
	for _, h := range ep.headers {
		out = append(out, "-H", h)
	}
	return out
}

func wrkArgs(b *bench, ep endpoint, dur string, extra ...string) []string {
	args := []string{"wrk", "-t1", "-c" + strconv.Itoa(b.cfg.conns), "-d" + dur + "s"}
	args = append(args, headerArgs(ep)...)
	args = append(args, extra...)
	return append(args, "http://"+ep.h1+"/")
}

func wrkWarmup(b *bench, ep endpoint) error {
	if b.cfg.warmup <= 0 {
		return nil
	}
	_, _, err := runLoad(b, "wrk-warmup", wrkArgs(b, ep, secs(b, true)))
	return err
}

func wrkMeasure(b *bench, ep endpoint, tag string) (loadResult, float64, error) {
	out, cpu, err := runLoad(b, "wrk-"+tag, wrkArgs(b, ep, secs(b, false), "-s", b.wrkScript))
	if err != nil {
		return loadResult{}, 0, err
	}
	r, err := parseWrk(out)
	return r, cpu, err
}

func rateArgs(b *bench, ep endpoint, dur string, extra ...string) []string {
	per := max(b.cfg.rate/b.cfg.rateClients, 1)
	args := []string{"h2load", "--h1", "-c" + strconv.Itoa(b.cfg.rateClients), "--rps", strconv.Itoa(per), "-D", dur}
	args = append(args, headerArgs(ep)...)
	args = append(args, extra...)
	return append(args, "http://"+ep.h1+"/")
}

func rateWarmup(b *bench, ep endpoint) error {
	if b.cfg.warmup <= 0 {
		return nil
	}
	_, _, err := runLoad(b, "h2load-warmup", rateArgs(b, ep, secs(b, true)))
	return err
}

func rateMeasure(b *bench, ep endpoint, tag string) (loadResult, float64, error) {
	logPath := filepath.Join(b.workDir, "h2load-"+tag+".log")
	return h2loadWithLog(b, tag, logPath, rateArgs(b, ep, secs(b, false), "--log-file="+logPath))
}

func h2Args(b *bench, url string, ep endpoint, dur string, extra ...string) []string {
	args := []string{"h2load", "-c" + strconv.Itoa(b.cfg.h2Clients), "-m" + strconv.Itoa(b.cfg.h2Streams), "-D", dur}
	args = append(args, headerArgs(ep)...)
	args = append(args, extra...)
	return append(args, url)
}

func h2Warmup(b *bench, url string, ep endpoint) error {
	if b.cfg.warmup <= 0 {
		return nil
	}
	_, _, err := runLoad(b, "h2load-warmup", h2Args(b, url, ep, secs(b, true)))
	return err
}

func h2Measure(b *bench, url string, ep endpoint, tag string) (loadResult, float64, error) {
	logPath := filepath.Join(b.workDir, "h2load-"+tag+".log")
	return h2loadWithLog(b, tag, logPath, h2Args(b, url, ep, secs(b, false), "--log-file="+logPath))
}

// h2loadWithLog runs h2load with --log-file=logPath and takes the percentiles from the log
// (h2load itself prints only min/max/mean); the log is removed afterwards.
func h2loadWithLog(b *bench, tag, logPath string, args []string) (loadResult, float64, error) {
	out, cpu, err := runLoad(b, "h2load-"+tag, args)
	if err != nil {
		return loadResult{}, 0, err
	}
	r, err := parseH2load(out)
	if err != nil {
		return r, cpu, err
	}
	f, err := os.Open(logPath)
	if err != nil {
		return r, cpu, fmt.Errorf("h2load log: %w", err)
	}
	defer f.Close()
	lat, err := parseH2loadLog(f)
	if err != nil {
		return r, cpu, err
	}
	r.p50us, r.p99us, r.p999us = loadstat.Percentile(lat, 50), loadstat.Percentile(lat, 99), loadstat.Percentile(lat, 99.9)
	return r, cpu, os.Remove(logPath)
}

// runLoad runs a load generator pinned to the load CPU and returns its output and CPU seconds.
func runLoad(b *bench, tag string, argv []string) (string, float64, error) {
	logPath := filepath.Join(b.workDir, tag+".out")
	p, err := startProc(argv[0], b.cfg.cpuLoad, logPath, nil, argv...)
	if err != nil {
		return "", 0, err
	}
	werr := p.wait()
	out, rerr := os.ReadFile(logPath)
	if werr != nil {
		return string(out), 0, fmt.Errorf("%s: %w: %s", argv[0], werr, p.logTail(3))
	}
	if rerr != nil {
		return "", 0, fmt.Errorf("%s output: %w", argv[0], rerr)
	}
	st := p.cmd.ProcessState
	return string(out), (st.UserTime() + st.SystemTime()).Seconds(), nil
}

// h3Args is the h3load command line for ep's HTTP/3 listener (the UDP port of its TLS one).
func h3Args(b *bench, bin string, ep endpoint, dur string) []string {
	args := []string{bin, "-url", "https://" + ep.h3 + "/", "-c", strconv.Itoa(b.cfg.h2Clients),
		"-m", strconv.Itoa(b.cfg.h2Streams), "-d", dur + "s", "-ca", b.svc.cert, "-expect-bytes", strconv.Itoa(len(b.body))}
	return append(args, headerArgs(ep)...)
}

// runH3load runs the harness's HTTP/3 load generator (built on first use) like the other
// load generators: pinned to the load CPU, its CPU time taken from its process state.
func runH3load(b *bench, ep endpoint, tag string, warm bool) (string, float64, error) {
	bin, err := b.helperBinary("h3load", "./cmd/conduit-bench/h3load")
	if err != nil {
		return "", 0, err
	}
	return runLoad(b, tag, h3Args(b, bin, ep, secs(b, warm)))
}

func h3Warmup(b *bench, ep endpoint) error {
	if b.cfg.warmup <= 0 {
		return nil
	}
	_, _, err := runH3load(b, ep, "h3load-warmup", true)
	return err
}
