package loadstat

import (
	"bytes"
	"testing"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99.9, 7},
		{"median of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p99.9 of 1..100 is the maximum", hundred, 99.9, 100},
		{"p0 is the minimum", hundred, 0, 1},
		{"p100 is the maximum", hundred, 100, 100},
		{"nearest rank rounds up", []float64{1, 2, 3}, 50, 2},
	} {
		if got := Percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestRecorderSummary(t *testing.T) {
	var a, b, all Recorder
	for _, us := range []float64{300, 100, 200} {
		a.OK(us)
	}
	b.OK(400)
	b.Fail()
	b.Fail()
	all.Merge(&a, &b)
	s := all.Summarize(2)
	want := Summary{Requests: 4, Errors: 2, Seconds: 2, P50: 200, P99: 400, P999: 400, RPS: 2}
	if s != want {
		t.Fatalf("summary %+v, want %+v", s, want)
	}
	var out bytes.Buffer
	if err := s.WriteCB(&out); err != nil {
		t.Fatal(err)
	}
	wantCB := "CB requests 4\nCB duration_us 2000000\nCB errors 2\nCB p50_us 200.0\nCB p99_us 400.0\nCB p999_us 400.0\n"
	if out.String() != wantCB {
		t.Fatalf("CB lines:\n%s\nwant:\n%s", out.String(), wantCB)
	}
	if empty := new(Recorder).Summarize(0); empty.RPS != 0 || empty.Requests != 0 {
		t.Fatalf("empty window: %+v", empty)
	}
}
