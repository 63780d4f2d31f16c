package cli

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
)

// GCFloorEnv names the environment variable that sets the heap floor in MiB (0 turns it
// off). Without it the floor is defaultGCFloorMiB; GOGC or GOMEMLIMIT in the environment
// turn it off, since the operator then chose the collector's settings.
const GCFloorEnv = "CONDUIT_GC_FLOOR_MIB"

// defaultGCFloorMiB is the heap floor of `conduit run`. A proxy's live heap is small
// (under 1 MiB for the plain proxy path) while it allocates a few KiB per request, so with
// GOGC=100 the collector's 4 MiB minimum goal meant a cycle every ~900 requests, and with
// one CPU each cycle's mark phase delays the requests that arrive during it
// (docs/benchmarks.md, "GC and the tail"). The floor costs at most this much heap over
// GOGC=100's.
const defaultGCFloorMiB = 16

// runtimeDefaultHeapMinimum is the Go runtime's minimum heap goal at GOGC=100 (4 MiB;
// runtime/mgcpacer.go defaultHeapMinimum). The minimum scales with GOGC, so the floor never
// sets GOGC above floor·100/4 MiB: that GOGC's minimum goal is the floor itself.
const runtimeDefaultHeapMinimum = 4 << 20

// gcFloor keeps the collector from running before the heap reaches floor bytes: after
// every cycle it sets GOGC so that the next goal is the larger of the floor and GOGC=100's
// goal (twice the live heap, plus stacks and globals). With a live heap above half the
// floor it is plain GOGC=100. The runtime calls adjust once per cycle through a cleanup on an
// unreachable sentinel, so the floor costs nothing between cycles.
type gcFloor struct {
	floor uint64

	mu      sync.Mutex // adjust (the runtime's cleanup goroutine) against stop
	percent int
	stopped bool
	samples []metrics.Sample
}

// gcSentinel is the object whose collection marks the end of a cycle; it is larger than
// the tiny allocator's 16-byte blocks, so it is freed by the first cycle after it is made.
type gcSentinel struct{ _ [32]byte }

// parseGCFloor returns the heap floor in bytes the environment asks for (0: off) and why
// it is off, "" when it is on.
func parseGCFloor(lookup func(string) (string, bool)) (uint64, string, error) {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := lookup(k); ok && v != "" {
			return 0, k + " is set", nil
		}
	}
	mib := uint64(defaultGCFloorMiB)
	if v, ok := lookup(GCFloorEnv); ok && v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n > 1<<20 {
			return 0, "", fmt.Errorf("%s must be a whole number of MiB from 0 to 1048576, got %q", GCFloorEnv, v)
		}
		mib = n
	}
	if mib == 0 {
		return 0, GCFloorEnv + "=0", nil
	}
	return mib << 20, "", nil
}

// startGCFloor applies the heap floor the environment asks for and returns a function that
// stops adjusting it and puts GOGC back to 100. It logs the floor, or why there is none.
func startGCFloor(lookup func(string) (string, bool), logger *slog.Logger) func() {
	floor, off, err := parseGCFloor(lookup)
	switch {
	case err != nil:
		logger.Warn("heap floor not set", "err", err)
		return func() {}
	case floor == 0:
		logger.Debug("heap floor off", "reason", off)
		return func() {}
	}
	f := newGCFloor(floor)
	f.start()
	logger.Debug("heap floor", "mib", floor>>20)
	return f.stop
}

func newGCFloor(floor uint64) *gcFloor {
	return &gcFloor{floor: floor, percent: 100, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
	}}
}

// start sets the first cycle's goal to the floor (before any cycle the runtime's goal is
// its heap minimum scaled by GOGC) and arms the per-cycle adjustment.
func (f *gcFloor) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(f.maxPercent())
	f.arm()
}

// maxPercent is the GOGC whose minimum heap goal is the floor.
func (f *gcFloor) maxPercent() int {
	return percentFor(f.floor, runtimeDefaultHeapMinimum, math.MaxInt32)
}

// stop ends the adjustments and puts GOGC back to 100.
func (f *gcFloor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	f.set(100)
}

// arm registers adjust to run after the next cycle.
func (f *gcFloor) arm() {
	runtime.AddCleanup(new(gcSentinel), func(f *gcFloor) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.stopped {
			return
		}
		f.adjust()
		f.arm()
	}, f)
}

// adjust sets GOGC for the next goal from what the last cycle marked. f.mu is held.
func (f *gcFloor) adjust() {
	metrics.Read(f.samples)
	var v [3]uint64
	for i, s := range f.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	live, scan := v[0], v[0]+v[1]+v[2]
	if live >= f.floor || scan == 0 {
		f.set(100)
		return
	}
	f.set(percentFor(f.floor-live, scan, f.maxPercent()))
}

// percentFor is the GOGC whose goal grows the heap by room over a cycle that scanned scan
// bytes (the runtime's goal is live + scan·GOGC/100), from 100 to most.
func percentFor(room, scan uint64, most int) int {
	if scan == 0 {
		return max(most, 100)
	}
	p := math.Ceil(float64(room) * 100 / float64(scan))
	return int(min(max(p, 100), float64(max(most, 100))))
}

// set changes GOGC when p differs from the last value set by more than a tenth (each
// change recomputes the pacer's goal under the heap lock; small changes gain nothing).
func (f *gcFloor) set(p int) {
	if d := p - f.percent; d > f.percent/10 || -d > f.percent/10 || (p == 100) != (f.percent == 100) {
		debug.SetGCPercent(p)
		f.percent = p
	}
}
