package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc; 100 on every Linux ABI Go supports.
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat the harness uses.
type procStat struct {
	pgrp     int
	ticks    uint64 // utime + stime
	children uint64 // cutime + cstime: reaped children (short-lived compiler processes, say)
}

// parseProcStat parses one /proc/PID/stat line. The command name may contain spaces
// and parentheses, so fields are counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat line without ')': %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0]=state f[1]=ppid f[2]=pgrp ... f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat line too short: %q", line)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("stat pgrp: %w", err)
	}
	var t [4]uint64
	for i := range t {
		if t[i], err = strconv.ParseUint(f[11+i], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("stat utime/stime/cutime/cstime in %q: %w", line, err)
		}
	}
	return procStat{pgrp: pgrp, ticks: t[0] + t[1], children: t[2] + t[3]}, nil
}

// groupPIDs lists the live processes whose process group is pgid.
func groupPIDs(pgid int) []int {
	if pgid <= 0 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err == nil && st.pgrp == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(b))
}

// groupMemKiB sums a /proc/PID/status field (VmRSS, VmHWM) in KiB over the group pgid.
func groupMemKiB(pgid int, field string) int64 {
	var sum int64
	for _, pid := range groupPIDs(pgid) {
		sum += statusKiB(pid, field)
	}
	return sum
}

// statusKiB reads one "Field:   N kB" line of /proc/PID/status.
func statusKiB(pid int, field string) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		return n
	}
	return 0
}

// cpuSample is a snapshot of CPU counters (ticks) for computing deltas over a run.
type cpuSample struct {
	at       time.Time
	proxy    uint64
	upstream uint64
	aux      uint64 // helper process groups (redis-server, conduit tap)
	others   uint64 // every process not ours, including the children it has reaped
	steal    uint64 // time the hypervisor ran something else while a vCPU wanted to run
}

// sampleCPU reads every process's counters in one pass over /proc. Our processes are the
// proxy's, the upstream's and the helpers' (auxPGs) process groups and the harness itself
// (whose reaped children are the load generators). proxyPG may be 0 ("direct").
//
// "Other" CPU is counted per process rather than from /proc/stat: with tick-based accounting,
// loopback softirq work lands partly in our processes' stime and partly nowhere, so
// busy-minus-ours is off by ±25% of a core in either direction.
func sampleCPU(proxyPG, upstreamPG int, auxPGs []int) cpuSample {
	s := cpuSample{at: time.Now(), steal: readSteal()}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return s
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue
		}
		switch {
		case proxyPG > 0 && st.pgrp == proxyPG:
			s.proxy += st.ticks
		case st.pgrp == upstreamPG:
			s.upstream += st.ticks
		case slices.Contains(auxPGs, st.pgrp):
			s.aux += st.ticks
		default:
			s.others += st.ticks + st.children
		}
	}
	return s
}

// cpuDelta is what happened between two samples; CPU values are in seconds.
type cpuDelta struct {
	elapsed  float64
	proxy    float64
	upstream float64
	aux      float64
	other    float64
	steal    float64
}

// delta computes the CPU seconds between samples a and b.
func delta(a, b cpuSample) cpuDelta {
	sec := func(x, y uint64) float64 {
		if y < x { // processes that ended without a living parent to reap them
			return 0
		}
		return float64(y-x) / clockTicks
	}
	return cpuDelta{
		elapsed:  b.at.Sub(a.at).Seconds(),
		proxy:    sec(a.proxy, b.proxy),
		upstream: sec(a.upstream, b.upstream),
		aux:      sec(a.aux, b.aux),
		other:    sec(a.others, b.others),
		steal:    sec(a.steal, b.steal),
	}
}

// otherPct is the CPU used by processes that are not ours, in percent of one core.
func (d cpuDelta) otherPct() float64 {
	if d.elapsed <= 0 {
		return 0
	}
	return 100 * d.other / d.elapsed
}

// stealPct is the time the hypervisor gave this machine's vCPUs to someone else while they
// had work, in percent of one core. On a shared host it is what "other processes" cannot
// show: the run was slowed by a neighbour outside the machine.
func (d cpuDelta) stealPct() float64 {
	if d.elapsed <= 0 {
		return 0
	}
	return 100 * d.steal / d.elapsed
}

// readSteal returns the steal time of all CPUs (ticks), the eighth value of /proc/stat's
// "cpu" line, or 0 where the kernel does not report it.
func readSteal() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return parseSteal(string(b))
}

// parseSteal reads the steal ticks from the text of /proc/stat (0 when absent).
func parseSteal(stat string) uint64 {
	line, _, _ := strings.Cut(stat, "\n")
	fs := strings.Fields(line)
	if len(fs) < 9 || fs[0] != "cpu" {
		return 0
	}
	n, _ := strconv.ParseUint(fs[8], 10, 64)
	return n
}
