package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// loadResult is what one load-generator run reports.
type loadResult struct {
	requests int64   // completed requests in the measured window
	errors   int64   // failed requests (socket errors, non-2xx, timeouts)
	seconds  float64 // measured window
	rps      float64
	p50us    float64
	p99us    float64
	p999us   float64
}

// parseWrk reads wrk's output with the "CB name value" lines that templates/wrk-report.lua
// prints; the harness's own load generators (./h3load) print the same lines
// (loadstat.Summary.WriteCB).
func parseWrk(out string) (loadResult, error) {
	vals := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "CB" {
			continue
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return loadResult{}, fmt.Errorf("wrk report line %q: %w", line, err)
		}
		vals[f[1]] = v
	}
	for _, k := range []string{"requests", "duration_us", "errors", "p50_us", "p99_us", "p999_us"} {
		if _, ok := vals[k]; !ok {
			return loadResult{}, fmt.Errorf("wrk output has no %q report line (was the Lua script loaded?)", k)
		}
	}
	r := loadResult{
		requests: int64(vals["requests"]),
		errors:   int64(vals["errors"]),
		seconds:  vals["duration_us"] / 1e6,
		p50us:    vals["p50_us"],
		p99us:    vals["p99_us"],
		p999us:   vals["p999_us"],
	}
	if r.seconds > 0 {
		r.rps = float64(r.requests) / r.seconds
	}
	return r, nil
}

var (
	h2loadFinished = regexp.MustCompile(`(?m)^finished in ([0-9.]+)(ms|s), ([0-9.]+) req/s`)
	h2loadRequests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2load reads h2load's summary. Latency percentiles come from its --log-file (see
// parseH2loadLog), as h2load prints only min/max/mean.
func parseH2load(out string) (loadResult, error) {
	m := h2loadFinished.FindStringSubmatch(out)
	if m == nil {
		return loadResult{}, fmt.Errorf("h2load output has no \"finished in\" line")
	}
	secs, _ := strconv.ParseFloat(m[1], 64)
	if m[2] == "ms" {
		secs /= 1000
	}
	rps, _ := strconv.ParseFloat(m[3], 64)
	rq := h2loadRequests.FindStringSubmatch(out)
	if rq == nil {
		return loadResult{}, fmt.Errorf("h2load output has no \"requests:\" line")
	}
	n := make([]int64, len(rq))
	for i := 1; i < len(rq); i++ {
		n[i], _ = strconv.ParseInt(rq[i], 10, 64)
	}
	// n: 1 total, 2 started, 3 done, 4 succeeded, 5 failed, 6 errored, 7 timeout.
	r := loadResult{requests: n[4], seconds: secs, rps: rps, errors: n[5] + n[6] + n[7]}
	if st := h2loadStatus.FindStringSubmatch(out); st != nil {
		var sc [5]int64
		for i := 1; i < 5; i++ {
			sc[i], _ = strconv.ParseInt(st[i], 10, 64)
		}
		// Only 2xx count as served. In timing-based runs (-D) the status counts also include
		// responses that arrived after the window closed, so they can exceed "done".
		r.requests = min(sc[1], n[3])
		r.errors += sc[2] + sc[3] + sc[4]
	}
	return r, nil
}

// parseH2loadLog reads h2load's --log-file (start µs, status, latency µs, tab-separated) and
// returns latencies of 2xx responses in µs, sorted.
func parseH2loadLog(rd io.Reader) ([]float64, error) {
	var lat []float64
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			continue
		}
		if !strings.HasPrefix(f[1], "2") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
		if err != nil {
			return nil, fmt.Errorf("h2load log line %q: %w", sc.Text(), err)
		}
		lat = append(lat, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read h2load log: %w", err)
	}
	sort.Float64s(lat)
	return lat, nil
}
