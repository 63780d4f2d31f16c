package telemetry

import (
	"sync"
	"testing"
)

func TestCounterGaugeHistogram(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("conduit_requests_total", "requests", "method", "status")
	get200 := c.With("GET", "200")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				get200.Inc()
			}
		}()
	}
	wg.Wait()
	if got := c.With("GET", "200").Value(); got != 8000 {
		t.Fatalf("counter = %v, want 8000", got)
	}
	g := r.Gauge("conduit_active_connections", "in flight").With()
	g.Inc()
	g.Inc()
	g.Dec()
	if g.Value() != 1 {
		t.Fatalf("gauge = %v", g.Value())
	}
	h := r.Histogram("lat", "latency", []float64{0.1, 1}, "u").With("a")
	for _, v := range []float64{0.05, 0.1, 0.5, 2} {
		h.Observe(v)
	}
	if b := h.Buckets(); b[0] != 2 || b[1] != 3 || h.Count() != 4 || h.Value() != 2.65 {
		t.Fatalf("buckets %v count %d sum %v", b, h.Count(), h.Value())
	}
	if len(r.Families()) != 3 || r.Families()[0].Name != "conduit_active_connections" {
		t.Fatalf("families %v", r.Families())
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c", "").With()
	h := r.Histogram("h", "", nil).With()
	if n := testing.AllocsPerRun(100, func() { c.Inc(); h.Observe(0.02) }); n != 0 {
		t.Fatalf("allocs per update = %v", n)
	}
}

func TestShapeMismatchPanics(t *testing.T) {
	r := NewRegistry()
	r.Counter("x", "", "a")
	defer func() {
		if recover() == nil {
			t.Fatal("want panic")
		}
	}()
	r.Gauge("x", "", "a")
}
