package main

import "testing"

func TestPairedCPU(t *testing.T) {
	r := func(round int, target string, cpu, steal float64) row {
		return row{Round: round, Mode: "h1", Target: target, Status: "ok", CPUusReq: cpu, StealPct: steal}
	}
	b := &bench{cfg: config{noisyPct: 10}, rows: []row{
		r(1, "conduit", 50, 0), r(1, "conduit-wasm", 53, 2),
		r(2, "conduit", 70, 30), r(2, "conduit-wasm", 80, 1), // a slowed round: not calm
		r(3, "conduit", 48, 1), r(3, "conduit-wasm", 52, 0),
		r(4, "conduit-wasm", 40, 0), // no plain row in round 4: not paired
		{Round: 5, Mode: "h1", Target: "conduit", Status: "failed"}, r(5, "conduit-wasm", 60, 0),
		r(1, "conduit-script", 60, 0),
	}}
	all, calm := b.pairedCPU("h1", "conduit-wasm")
	if got, want := medianOf(all), 4.0; len(all) != 3 || got != want {
		t.Errorf("all = %v (median %v), want 3 rounds, median %v", all, got, want)
	}
	if got, want := medianOf(calm), 3.5; len(calm) != 2 || got != want {
		t.Errorf("calm = %v (median %v), want 2 rounds, median %v", calm, got, want)
	}
	if got, want := b.pairedNote("h1", "conduit-wasm"), "; paired +4.0 µs/req (3 rounds), calm +3.5 (2)"; got != want {
		t.Errorf("pairedNote = %q, want %q", got, want)
	}
	if got := b.pairedNote("h2c", "conduit-wasm"); got != "" {
		t.Errorf("pairedNote for a mode not run = %q, want empty", got)
	}
}
