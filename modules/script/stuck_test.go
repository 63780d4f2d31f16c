package script_test

import (
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestStuckCallsDisableTheEntry: calls that run past their budget are counted; at the cap
// the entry is disabled (its requests get the entry's error behaviour at once) and its
// program is stopped, which ends the endless loops still running.
func TestStuckCallsDisableTheEntry(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/loops.go, timeoutMs: 200, onError: deny}\n"))
	metric := func(name string) float64 {
		return srv.Metrics().Counter(name, "", "site", "entry").With("*", "middleware[0]").Value()
	}
	for i := range 4 {
		start := time.Now()
		if rep := servertest.Get(t, srv.URL(8080)+"/spin"); rep.Status != 500 {
			t.Fatalf("spin %d: %d %q", i, rep.Status, rep.Body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("spin %d took %v", i, d)
		}
	}
	if got := metric("conduit_script_timeouts_total"); got != 4 {
		t.Fatalf("timeouts %v, want 4", got)
	}
	// Disabled: no call any more, the error behaviour (deny) answers even a harmless path.
	calls := metric("conduit_script_calls_total")
	if rep := servertest.Get(t, srv.URL(8080)+"/fine"); rep.Status != 500 {
		t.Fatalf("disabled entry answered %d", rep.Status)
	}
	if got := metric("conduit_script_calls_total"); got != calls {
		t.Fatalf("a disabled entry was called: %v calls, had %v", got, calls)
	}
	// The stopped program lets its spinning calls end.
	stuck := srv.Metrics().Gauge("conduit_script_stuck_calls", "", "site", "entry").With("*", "middleware[0]")
	deadline := time.Now().Add(5 * time.Second)
	for stuck.Value() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%v calls still stuck after the program was stopped", stuck.Value())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
