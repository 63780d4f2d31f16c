package wasm

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// watchdog enforces timeoutMs on the guest calls of one runtime (guestRuntime). Every
// instance of the runtime has a slot, registered when the instance is made and removed when
// it is closed. A call stores the watchdog's current tick number in its slot (begin) and
// clears it (end): two atomic operations on the slot, no lock, timer, goroutine or context
// per call. One goroutine per runtime, running only while calls are in flight, ticks every
// tick, counts the ticks, and interrupts each call that began `limit` ticks ago or earlier
// by setting its instance's interrupt global (interrupt.go), so the guest traps at its next
// loop iteration.
//
// Ticks are at least tick apart, and a call that read tick number n began after tick n, so
// a call interrupted at tick n+limit has run at least (limit-1)·tick ≥ timeout: a call is
// never interrupted early. It is interrupted at most limit ticks after the tick before it
// began, that is within timeout + 2 ticks of its start when the goroutine is scheduled on
// time (later on a machine so loaded that it is not), plus the time to reach the next loop
// iteration or return from a host function.
type watchdog struct {
	timeout time.Duration
	tick    time.Duration
	limit   int64 // ticks: ceil(timeout/tick) + 1

	now    atomic.Int64 // the number of ticks so far
	active atomic.Bool  // the goroutine ticks; a call that finds it false wakes it
	wake   chan struct{}
	stop   chan struct{}
	once   sync.Once

	// mu guards slots: taken when an instance is made or closed and once per tick, never
	// by a call.
	mu    sync.Mutex
	slots map[*slot]struct{}
}

// slot is one instance's registration with the watchdog; an instance runs one call at a
// time, so it owns one slot.
type slot struct {
	intr api.MutableGlobal // the instance's interrupt global
	// began is 0 when no call runs, the watchdog's tick number + 1 when the running call
	// began, or interruptedCall when the watchdog interrupted the running call.
	began atomic.Int64
}

// interruptedCall is the value of slot.began for a call the watchdog interrupted.
const interruptedCall = -1

// Bounds of the watchdog's tick: a tenth of the timeout within them.
const (
	minTick = time.Millisecond
	maxTick = 50 * time.Millisecond
)

// newWatchdog starts the watchdog of calls bounded by timeout; stop it with close.
func newWatchdog(timeout time.Duration) *watchdog {
	tick := min(max(timeout/10, minTick), maxTick)
	w := &watchdog{
		timeout: timeout,
		tick:    tick,
		limit:   int64((timeout+tick-1)/tick) + 1,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		slots:   map[*slot]struct{}{},
	}
	go w.run()
	return w
}

// add registers s, an instance's slot, before the instance's first call.
func (w *watchdog) add(s *slot) {
	w.mu.Lock()
	w.slots[s] = struct{}{}
	w.mu.Unlock()
}

// remove unregisters s when its instance is closed.
func (w *watchdog) remove(s *slot) {
	w.mu.Lock()
	delete(w.slots, s)
	w.mu.Unlock()
}

// begin marks the start of a call on s.
func (w *watchdog) begin(s *slot) {
	s.began.Store(w.now.Load() + 1)
	if !w.active.Load() && w.active.CompareAndSwap(false, true) {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// end marks the end of the call on s and reports whether the watchdog interrupted it; an
// interrupted instance must not run again (its interrupt global is set).
func (w *watchdog) end(s *slot) bool { return s.began.Swap(0) == interruptedCall }

// close stops the watchdog's goroutine.
func (w *watchdog) close() { w.once.Do(func() { close(w.stop) }) }

func (w *watchdog) run() {
	t := time.NewTimer(w.tick)
	defer t.Stop()
	for {
		if !w.active.Load() {
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
		if w.check(w.now.Add(1)) {
			continue
		}
		// No call in flight: stop ticking. A call that began before active turns false
		// did not wake the goroutine, so look once more (begin stores its slot before it
		// reads active, and both are sequentially consistent atomics).
		w.active.Store(false)
		if w.check(w.now.Load()) {
			w.active.Store(true)
		}
	}
}

// check interrupts every call that began limit ticks or more before tick now, and reports
// whether any call is in flight.
func (w *watchdog) check(now int64) bool {
	busy := false
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.slots {
		began := s.began.Load()
		if began <= 0 {
			continue
		}
		busy = true
		if now-(began-1) >= w.limit && s.began.CompareAndSwap(began, interruptedCall) {
			s.intr.Set(1)
		}
	}
	return busy
}
