package ratelimit

import (
	"testing"
	"time"
)

// TestBatchEntryResultMatchesTakes: the i-th result of a batch of n, given what a store
// reports (granted, ahead), is exactly the i-th of n consecutive takes at one instant, for
// full, partly drained, empty and over-drained buckets (a TAT beyond the tolerance, which a
// reload to a smaller limit leaves behind).
func TestBatchEntryResultMatchesTakes(t *testing.T) {
	now := int64(1_000_000_000_000)
	tests := []struct {
		name  string
		p     Policy
		ahead int64 // bucket TAT − now before the batch (≤ 0: full)
		n     int64
	}{
		{"full bucket, batch fits", NewPolicy(10, 5, 2), 0, 3},
		{"full bucket, batch overflows", NewPolicy(10, 5, 2), 0, 12},
		{"partly drained", NewPolicy(1, 10, 0), int64(450 * time.Millisecond), 9},
		{"empty", NewPolicy(60, 3, 0), int64(60 * time.Second), 4},
		{"over-drained after a reload", NewPolicy(60, 3, 0), int64(90 * time.Second), 2},
		{"one request", NewPolicy(3600, 1, 0), 0, 1},
		{"1 ns interval", NewPolicy(1, 2_000_000_000, 0), 17, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The sequential answer.
			tat := now + tt.ahead
			want := make([]Result, tt.n)
			granted := int64(0)
			for i := range want {
				tat, want[i] = take(tat, now, &tt.p)
				if want[i].Allowed {
					granted++
				}
			}
			e := BatchEntry{Policy: tt.p, N: tt.n, Granted: granted, Ahead: max(tt.ahead, 0), Used: tt.p}
			for i := range tt.n {
				if got := e.Result(i); got != want[i] {
					t.Errorf("request %d of %d: %+v, want %+v", i, tt.n, got, want[i])
				}
			}
		})
	}
}
