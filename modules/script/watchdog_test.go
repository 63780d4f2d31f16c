package script

import (
	"testing"
	"time"
)

// fakeJob is a call that returns when released.
type fakeJob struct {
	guard
	w       *watchdog
	release chan struct{}
}

func newFakeJob(w *watchdog) *fakeJob {
	return &fakeJob{guard: guard{done: make(chan struct{}, 1), start: w.since(time.Now())}, w: w, release: make(chan struct{})}
}

func (j *fakeJob) budget() *guard { return &j.guard }

func (j *fakeJob) run(wk *worker) bool {
	<-j.release
	if !j.returned() {
		return false
	}
	j.w.finished(&j.guard, wk)
	j.done <- struct{}{}
	return true
}

// waitDone waits for the job's one signal.
func waitDone(t *testing.T, j *fakeJob) {
	t.Helper()
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no signal from the job")
	}
}

func TestWatchdogTick(t *testing.T) {
	for _, tt := range []struct{ budget, tick time.Duration }{
		{time.Millisecond, time.Millisecond},
		{5 * time.Millisecond, time.Millisecond},
		{30 * time.Millisecond, 3 * time.Millisecond},
		{50 * time.Millisecond, 5 * time.Millisecond},
		{time.Minute, 5 * time.Millisecond},
	} {
		if got := newWatchdog(tt.budget, func() {}).tick; got != tt.tick {
			t.Errorf("budget %v: tick %v, want %v", tt.budget, got, tt.tick)
		}
	}
}

// TestWatchdogAbandons: a call past its budget is abandoned (counted once, its request
// woken) while its worker still runs it; a call in time is not; a call inside next is not,
// and its budget starts again when it leaves next.
func TestWatchdogAbandons(t *testing.T) {
	abandoned := make(chan struct{}, 10)
	w := newWatchdog(20*time.Millisecond, func() { abandoned <- struct{}{} })
	quick, slow, inNext := newFakeJob(w), newFakeJob(w), newFakeJob(w)
	inNext.state = stateInNext
	for _, j := range []*fakeJob{quick, slow, inNext} {
		w.dispatch(j)
	}
	close(quick.release)
	waitDone(t, quick)
	waitDone(t, slow)
	<-abandoned
	if quick.state != stateDone || slow.state != stateAbandoned {
		t.Fatalf("states: quick %d, slow %d", quick.state, slow.state)
	}
	close(slow.release) // its worker sees the call abandoned and ends
	// inNext was not abandoned while in next; back from next, its budget runs again.
	inNext.mu.Lock()
	if inNext.state != stateInNext {
		t.Fatalf("a call in next was abandoned")
	}
	inNext.state, inNext.start = stateRunning, restartAtTick
	inNext.mu.Unlock()
	back := time.Now()
	waitDone(t, inNext)
	if d := time.Since(back); d < 20*time.Millisecond {
		t.Errorf("abandoned %v after leaving next, before its budget", d)
	}
	<-abandoned
	close(inNext.release)
	if n := len(abandoned); n != 0 {
		t.Fatalf("%d more abandons", n)
	}
}

// TestWatchdogWaitsForALockedCall: a call holding its lock (writing to the client) is not
// abandoned until it lets go, and the other calls are watched meanwhile.
func TestWatchdogWaitsForALockedCall(t *testing.T) {
	w := newWatchdog(10*time.Millisecond, func() {})
	writing, other := newFakeJob(w), newFakeJob(w)
	writing.mu.Lock()
	w.dispatch(writing)
	w.dispatch(other)
	waitDone(t, other) // abandoned though the other call's lock is held
	select {
	case <-writing.done:
		t.Fatal("a call was abandoned while it held its lock")
	default:
	}
	writing.mu.Unlock()
	waitDone(t, writing)
	close(writing.release)
	close(other.release)
}

// TestWatchdogStopsAndRetiresWorkers: with no call for its linger, the watchdog stops and
// its idle workers end; the next call starts both again.
func TestWatchdogStopsAndRetiresWorkers(t *testing.T) {
	w := newWatchdog(time.Second, func() {})
	w.linger = 20 * time.Millisecond
	for range 2 {
		jobs := []*fakeJob{newFakeJob(w), newFakeJob(w), newFakeJob(w)}
		for _, j := range jobs {
			w.dispatch(j)
		}
		for _, j := range jobs {
			close(j.release)
			waitDone(t, j)
		}
		ended := make(chan struct{})
		go func() {
			w.workers.Wait()
			close(ended)
		}()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("the idle workers were not retired")
		}
		w.mu.Lock()
		running, idle := w.running, len(w.idle)
		w.mu.Unlock()
		if running || idle != 0 {
			t.Fatalf("after the linger: running %v, %d idle workers", running, idle)
		}
	}
}

// TestCheckStacks: the watchdog reports a runaway when, with calls past their budget, the
// stacks grew by more than stackGrowthLimit over the smallest size seen since the first of
// them; without such calls it only forgets its base.
func TestCheckStacks(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		stuck    []int64  // per tick
		stacks   []uint64 // per tick
		runaways int
	}{
		{"no stuck call, any growth", []int64{0, 0, 0}, []uint64{8 * mib, 900 * mib, 900 * mib}, 0},
		{"stuck call, growth below the limit", []int64{1, 1, 1}, []uint64{8 * mib, 64 * mib, 130 * mib}, 0},
		{"stuck call, growth past the limit", []int64{1, 1, 1}, []uint64{8 * mib, 100 * mib, 200 * mib}, 1},
		{"base is the smallest size seen", []int64{1, 1, 1}, []uint64{100 * mib, 20 * mib, 160 * mib}, 1},
		{"base forgotten when no call is stuck", []int64{1, 0, 1, 1}, []uint64{8 * mib, 8 * mib, 100 * mib, 200 * mib}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatchdog(time.Second, func() {})
			tick, runaways := 0, 0
			w.watchStacks(func() int64 { return tt.stuck[tick] }, func() { runaways++ })
			w.stacks = func() uint64 { return tt.stacks[tick] }
			for tick = range tt.stuck {
				w.checkStacks()
			}
			if runaways != tt.runaways {
				t.Fatalf("%d runaways, want %d", runaways, tt.runaways)
			}
		})
	}
}
