// Package loadstat is the accounting shared by conduit-bench and its load generators:
// nearest-rank percentiles, and the summary of a measured window that a load generator
// prints as "CB name value" lines for the harness to read.
package loadstat

import (
	"fmt"
	"io"
	"slices"
)

// Percentile returns the p-th percentile (0–100) of sorted values, nearest-rank; 0 when
// there are none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	rank = min(max(rank, 0), len(sorted)-1)
	return sorted[rank]
}

// Recorder collects one worker's outcomes inside a measured window: the latency of every
// successful request in µs, and a count of failed ones. It is not safe for concurrent use;
// give each worker its own and Merge them.
type Recorder struct {
	LatUs  []float64
	Errors int64
}

// OK records a successful request that took us microseconds.
func (r *Recorder) OK(us float64) { r.LatUs = append(r.LatUs, us) }

// Fail records a failed request (transport error or non-2xx status).
func (r *Recorder) Fail() { r.Errors++ }

// Merge adds the outcomes of others to r.
func (r *Recorder) Merge(others ...*Recorder) {
	for _, o := range others {
		r.LatUs = append(r.LatUs, o.LatUs...)
		r.Errors += o.Errors
	}
}

// Summary is a measured window: requests completed with success inside it, failures,
// its length, and latency percentiles in µs.
type Summary struct {
	Requests, Errors    int64
	Seconds             float64
	P50, P99, P999, RPS float64
}

// Summarize sorts r's latencies and computes the summary of a window of seconds.
func (r *Recorder) Summarize(seconds float64) Summary {
	slices.Sort(r.LatUs)
	s := Summary{Requests: int64(len(r.LatUs)), Errors: r.Errors, Seconds: seconds,
		P50: Percentile(r.LatUs, 50), P99: Percentile(r.LatUs, 99), P999: Percentile(r.LatUs, 99.9)}
	if seconds > 0 {
		s.RPS = float64(s.Requests) / seconds
	}
	return s
}

// WriteCB prints s as the "CB name value" lines that conduit-bench reads from wrk's report
// script (templates/wrk-report.lua) and from its own load generators.
func (s Summary) WriteCB(w io.Writer) error {
	_, err := fmt.Fprintf(w, "CB requests %d\nCB duration_us %.0f\nCB errors %d\nCB p50_us %.1f\nCB p99_us %.1f\nCB p999_us %.1f\n",
		s.Requests, s.Seconds*1e6, s.Errors, s.P50, s.P99, s.P999)
	return err
}
