package script

import (
	"runtime/metrics"
	"sync"
	"time"
)

// The budget of an entry's calls is enforced by one watchdog goroutine per entry instead of a
// timer per call: a call records when its budget started, and the watchdog looks at the
// calls in flight every tick and abandons those past their budget. A call therefore
// overruns its budget by at most one tick (plus scheduling delay) before its request goes
// on without it. The script itself still runs on a kept worker goroutine, not on the
// request's: net/http completes a response only when the handler's goroutine returns
// (HTTP/2 sends END_STREAM, HTTP/1.1 the last chunk and the next request on the connection
// only then), and a call blocked in compiled code (time.Sleep, a channel) cannot be made
// to return, so a request whose goroutine ran the script could not be answered.

// Watchdog ticks: a tenth of the budget, within these bounds.
const (
	minTick = time.Millisecond
	maxTick = 5 * time.Millisecond
)

// watchdogLinger is how long the watchdog keeps running with no call in flight and none
// started before it stops, retiring the idle workers with it; the next call starts both
// again.
const watchdogLinger = 2 * time.Second

// guard is the budget state of one call, shared by the worker that runs the script, the
// request's goroutine that waits for it, and the watchdog.
type guard struct {
	mu    sync.Mutex
	state int           // stateRunning, stateInNext, stateAbandoned or stateDone
	start time.Duration // when the budget started, on the watchdog's clock, or restartAtTick
	slot  int           // index in the watchdog's calls while in flight
	done  chan struct{} // one signal per call: it returned in time, or it was abandoned

	panicked any // what the script panicked with, when it returned in time
}

// Call states.
const (
	stateRunning   = iota // the script's own code runs
	stateInNext           // the script called next; the budget is paused
	stateAbandoned        // the budget ran out; the request went on without the call
	stateDone             // the call returned in time
)

// restartAtTick is the start of a call back from next: the watchdog's next tick stamps it,
// so that leaving next reads no clock (the budget after next may run one tick longer).
const restartAtTick time.Duration = -1

// expire abandons the call if its budget ran out by now and reports whether it did. A call
// whose lock is held (it is writing to the client or entering next) is looked at again at
// the next tick, so that one slow write does not hold up the other calls' watch.
func (g *guard) expire(now, budget time.Duration) bool {
	if !g.mu.TryLock() {
		return false
	}
	defer g.mu.Unlock()
	if g.state != stateRunning {
		return false
	}
	if g.start == restartAtTick {
		g.start = now
	}
	if now-g.start < budget {
		return false
	}
	g.state = stateAbandoned
	return true
}

// returned records that the script returned; it reports false when the call had been
// abandoned already (nobody waits for it).
func (g *guard) returned() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateAbandoned {
		return false
	}
	g.state = stateDone
	return true
}

// job is one call a worker runs: a request-phase or a response-phase call.
type job interface {
	// run runs the script and reports whether the call returned within its budget (its
	// worker may then take the next call).
	run(wk *worker) bool
	// budget returns the call's budget state.
	budget() *guard
}

// worker is a kept goroutine that runs calls. Workers are kept because a script runs deep
// in the interpreter: a fresh goroutine would grow its stack on every call.
type worker struct{ jobs chan job }

// stackGrowthLimit is how much the process's goroutine stacks may grow while calls of the
// entry run past their budget before the watchdog reports a runaway. A call that recurses
// without end grows its goroutine's stack until Go ends the whole process ("goroutine stack
// exceeds 1000000000-byte limit", which no recover catches); stopping the program ends the
// recursion. Stacks double as they grow, so a stack that passed this limit is caught before
// it needs the 1 GB one.
const stackGrowthLimit = 128 << 20

// stackBytes is the memory of the process's goroutine stacks.
func stackBytes() uint64 {
	s := [1]metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// watchdog is an entry's budget keeper and the owner of its workers.
type watchdog struct {
	budget  time.Duration
	tick    time.Duration
	linger  time.Duration // watchdogLinger
	epoch   time.Time
	abandon func()         // called for each call the watchdog abandons, before its request is woken
	workers sync.WaitGroup // the worker goroutines still running

	// stuck and runaway, when set (watchStacks), make the watchdog watch the process's
	// stacks while the entry has calls past their budget; stackBase is the smallest size
	// seen since the first of them (the watchdog goroutine's own).
	stuck     func() int64
	runaway   func()
	stacks    func() uint64 // stackBytes; a test's readings
	stackBase uint64

	mu       sync.Mutex
	calls    []*guard  // in flight
	idle     []*worker // waiting for a call
	running  bool      // the watchdog goroutine runs
	lastCall time.Duration
}

// newWatchdog returns the watchdog of an entry whose calls run under budget; abandon is
// called for each call it abandons.
func newWatchdog(budget time.Duration, abandon func()) *watchdog {
	return &watchdog{budget: budget, tick: min(max(budget/10, minTick), maxTick), linger: watchdogLinger, epoch: time.Now(), abandon: abandon}
}

// watchStacks makes the watchdog call runaway when, while stuck reports calls running past
// their budget, the process's goroutine stacks grew by more than stackGrowthLimit; it keeps
// the watchdog running as long as there are such calls. Call it before the first dispatch.
func (w *watchdog) watchStacks(stuck func() int64, runaway func()) {
	w.stuck, w.runaway, w.stacks = stuck, runaway, stackBytes
}

// checkStacks is the watchdog's look at the stacks on a tick (see watchStacks).
func (w *watchdog) checkStacks() {
	if w.stuck == nil || w.stuck() <= 0 {
		w.stackBase = 0
		return
	}
	cur := w.stacks()
	if w.stackBase == 0 || cur < w.stackBase {
		w.stackBase = cur
	}
	if cur-w.stackBase > stackGrowthLimit {
		w.stackBase = 0
		w.runaway()
	}
}

// since converts t to the watchdog's clock.
func (w *watchdog) since(t time.Time) time.Duration { return t.Sub(w.epoch) }

// dispatch puts the call in flight and hands it to an idle worker, or starts one; it
// starts the watchdog goroutine when it is not running.
func (w *watchdog) dispatch(j job) {
	g := j.budget()
	w.mu.Lock()
	g.slot = len(w.calls)
	w.calls = append(w.calls, g)
	w.lastCall = g.start
	if !w.running {
		w.running = true
		go w.watch()
	}
	var wk *worker
	if n := len(w.idle); n > 0 {
		wk = w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
	}
	w.mu.Unlock()
	if wk != nil {
		wk.jobs <- j // buffered: an idle worker's channel is empty
		return
	}
	wk = &worker{jobs: make(chan job, 1)}
	w.workers.Add(1)
	go w.work(wk, j)
}

// remove takes g out of the calls in flight; w.mu is held.
func (w *watchdog) remove(g *guard) {
	last := len(w.calls) - 1
	moved := w.calls[last]
	w.calls[g.slot] = moved
	moved.slot = g.slot
	w.calls[last] = nil
	w.calls = w.calls[:last]
}

// finished takes a call that returned in time out of the calls in flight and makes its
// worker idle again.
func (w *watchdog) finished(g *guard, wk *worker) {
	w.mu.Lock()
	w.remove(g)
	w.idle = append(w.idle, wk)
	w.mu.Unlock()
}

// work runs calls on one worker until the watchdog retires it (a nil job) or a call runs
// past its budget: that goroutine is left to the call and ends with it.
func (w *watchdog) work(wk *worker, j job) {
	defer w.workers.Done()
	for j != nil && j.run(wk) {
		j = <-wk.jobs
	}
}

// watch is the watchdog goroutine: every tick it abandons the calls past their budget and
// wakes their requests; it stops after its linger without calls.
func (w *watchdog) watch() {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	var late []*guard
	for range t.C {
		late = late[:0]
		now := w.since(time.Now())
		w.mu.Lock()
		for i := 0; i < len(w.calls); {
			if g := w.calls[i]; g.expire(now, w.budget) {
				w.remove(g) // the call at i is now another one
				late = append(late, g)
				continue
			}
			i++
		}
		stop := len(w.calls) == 0 && now-w.lastCall > w.linger && (w.stuck == nil || w.stuck() <= 0)
		var idle []*worker
		if stop {
			w.running = false
			idle, w.idle = w.idle, nil
		}
		w.mu.Unlock()
		for _, g := range late {
			w.abandon()
			g.done <- struct{}{} // buffered; the call's request answers without it
		}
		w.checkStacks()
		if stop {
			for _, wk := range idle {
				wk.jobs <- nil
			}
			return
		}
	}
}
