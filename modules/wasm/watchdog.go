package wasm

import (
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// watchdog enforces one entry's timeoutMs on its guest calls: a call registers its slot
// (begin) and unregisters it (end); one goroutine per entry, running only while calls are
// in flight, wakes every tick and interrupts each call past its deadline by setting its
// instance's interrupt global (interrupt.go), so the guest traps at its next loop
// iteration. A call thus ends within timeout + tick of its start (plus the time to reach
// the next loop iteration or return from a host function), and no goroutine, timer or
// context is made per call.
type watchdog struct {
	timeout time.Duration
	tick    time.Duration
	base    time.Time // deadlines are monotonic offsets from base

	mu       sync.Mutex
	inflight map[*slot]struct{}
	wake     chan struct{} // a call started while none was in flight
	stop     chan struct{}
	stopOnce sync.Once
}

// slot is one instance's registration with the watchdog; an instance runs one call at a
// time, so it owns one slot. The fields after intr are guarded by the watchdog's mu.
type slot struct {
	intr        api.MutableGlobal // the instance's interrupt global
	deadline    time.Duration     // since the watchdog's base
	interrupted bool
}

// Bounds of the watchdog's tick: a tenth of the timeout within them.
const (
	minTick = time.Millisecond
	maxTick = 50 * time.Millisecond
)

// newWatchdog starts the watchdog of calls bounded by timeout; stop it with close.
func newWatchdog(timeout time.Duration) *watchdog {
	w := &watchdog{
		timeout:  timeout,
		tick:     min(max(timeout/10, minTick), maxTick),
		base:     time.Now(),
		inflight: map[*slot]struct{}{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	go w.run()
	return w
}

// begin registers a call on s.
func (w *watchdog) begin(s *slot) {
	d := time.Since(w.base) + w.timeout
	w.mu.Lock()
	s.deadline, s.interrupted = d, false
	first := len(w.inflight) == 0
	w.inflight[s] = struct{}{}
	w.mu.Unlock()
	if first {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// end unregisters the call on s and reports whether the watchdog interrupted it; an
// interrupted instance must not run again (its interrupt global is set).
func (w *watchdog) end(s *slot) bool {
	w.mu.Lock()
	delete(w.inflight, s)
	interrupted := s.interrupted
	w.mu.Unlock()
	return interrupted
}

// close stops the watchdog's goroutine.
func (w *watchdog) close() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *watchdog) run() {
	t := time.NewTimer(w.tick)
	defer t.Stop()
	for {
		w.mu.Lock()
		idle := len(w.inflight) == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-w.wake:
			case <-w.stop:
				return
			}
		}
		t.Reset(w.tick)
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
		w.interruptLate()
	}
}

// interruptLate interrupts every call past its deadline.
func (w *watchdog) interruptLate() {
	now := time.Since(w.base)
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.inflight {
		if !s.interrupted && now >= s.deadline {
			s.interrupted = true
			s.intr.Set(1)
		}
	}
}
