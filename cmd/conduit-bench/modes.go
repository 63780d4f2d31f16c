package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mode is one way of loading a target. warmup runs unmeasured; measure runs the measured
// window and returns the load generator's result and its CPU seconds.
//
// h2c and h2tls (HTTP/2 to the proxy) are meant to join as further entries here, with the
// upstream/peer templates gaining the matching listeners.
type Mode struct {
	Name      string
	Desc      string
	Tool      string // load generator binary
	FixedRate bool   // latency at a fixed offered rate (added latency vs direct), not saturation
	warmup    func(b *bench, addr string) error
	measure   func(b *bench, addr, tag string) (loadResult, float64, error)
}

// allModes is the ordered list -modes selects from.
var allModes = []Mode{
	{
		Name: "h1", Tool: "wrk",
		Desc:    "HTTP/1.1 keep-alive saturation: wrk -t1 -c<conns>, measured after a warm-up",
		warmup:  wrkWarmup,
		measure: wrkMeasure,
	},
	{
		Name: "rate", Tool: "h2load", FixedRate: true,
		Desc:    "HTTP/1.1 at a fixed rate: h2load --h1 -c<clients> --rps <rate/clients>",
		warmup:  rateWarmup,
		measure: rateMeasure,
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

func wrkArgs(b *bench, addr, dur string) []string {
	return []string{"wrk", "-t1", "-c" + strconv.Itoa(b.cfg.conns), "-d" + dur + "s", "http://" + addr + "/"}
}

func wrkWarmup(b *bench, addr string) error {
	if b.cfg.warmup <= 0 {
		return nil
	}
	_, _, err := runLoad(b, "wrk-warmup", wrkArgs(b, addr, secs(b, true)))
	return err
}

func wrkMeasure(b *bench, addr, tag string) (loadResult, float64, error) {
	args := wrkArgs(b, addr, secs(b, false))
	args = append(args[:len(args)-1], "-s", b.wrkScript, args[len(args)-1])
	out, cpu, err := runLoad(b, "wrk-"+tag, args)
	if err != nil {
		return loadResult{}, 0, err
	}
	r, err := parseWrk(out)
	return r, cpu, err
}

func rateArgs(b *bench, addr, dur string) []string {
	per := max(b.cfg.rate/b.cfg.rateClients, 1)
	return []string{"h2load", "--h1", "-c" + strconv.Itoa(b.cfg.rateClients), "--rps", strconv.Itoa(per),
		"-D", dur, "http://" + addr + "/"}
}

func rateWarmup(b *bench, addr string) error {
	if b.cfg.warmup <= 0 {
		return nil
	}
	_, _, err := runLoad(b, "h2load-warmup", rateArgs(b, addr, secs(b, true)))
	return err
}

func rateMeasure(b *bench, addr, tag string) (loadResult, float64, error) {
	logPath := filepath.Join(b.workDir, "h2load-"+tag+".log")
	args := rateArgs(b, addr, secs(b, false))
	args = append(args[:len(args)-1], "--log-file="+logPath, args[len(args)-1])
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
	r.p50us, r.p99us, r.p999us = percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9)
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
