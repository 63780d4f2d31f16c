package cli

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestParseGCFloor(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    uint64
		off     string
		wantErr bool
	}{
		{"default", nil, defaultGCFloorMiB << 20, "", false},
		{"set", map[string]string{GCFloorEnv: "64"}, 64 << 20, "", false},
		{"zero turns it off", map[string]string{GCFloorEnv: "0"}, 0, GCFloorEnv + "=0", false},
		{"GOGC wins", map[string]string{"GOGC": "200", GCFloorEnv: "64"}, 0, "GOGC is set", false},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "1GiB"}, 0, "GOMEMLIMIT is set", false},
		{"empty GOGC is unset", map[string]string{"GOGC": ""}, defaultGCFloorMiB << 20, "", false},
		{"not a number", map[string]string{GCFloorEnv: "16MiB"}, 0, "", true},
		{"negative", map[string]string{GCFloorEnv: "-1"}, 0, "", true},
		{"too large", map[string]string{GCFloorEnv: "99999999"}, 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got, off, err := parseGCFloor(lookup)
			if (err != nil) != tc.wantErr || got != tc.want || off != tc.off {
				t.Fatalf("parseGCFloor = %d, %q, %v; want %d, %q, error %v", got, off, err, tc.want, tc.off, tc.wantErr)
			}
		})
	}
}

func TestPercentFor(t *testing.T) {
	tests := []struct {
		room, scan uint64
		most, want int
	}{
		{16 << 20, 4 << 20, 400, 400},        // the first cycle: 4 MiB minimum → 16 MiB
		{10 << 20, 6 << 20, 400, 167},        // 6 MiB live: the next goal is the floor
		{15 << 20, 1 << 20, 400, 400},        // 1 MiB live: the minimum goal (4 MiB × 4) is the floor
		{8 << 20, 10 << 20, 400, 100},        // live above half the floor: plain GOGC=100
		{16 << 20, 0, 400, 400},              // nothing scanned
		{(16 << 20) + 1, 16 << 20, 400, 101}, // rounded up, so the goal reaches the floor
		{16 << 20, 4 << 20, 50, 100},         // a floor under 4 MiB: never below 100
	}
	for _, tc := range tests {
		if got := percentFor(tc.room, tc.scan, tc.most); got != tc.want {
			t.Errorf("percentFor(%d, %d, %d) = %d, want %d", tc.room, tc.scan, tc.most, got, tc.want)
		}
	}
}

// readGC returns the runtime's current GOGC and heap goal.
func readGC() (percent, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestGCFloorLive runs the floor in this process: after a cycle the heap goal is the floor
// (the test's live heap is far below it), and stop puts GOGC back to 100.
func TestGCFloorLive(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	const floor = 64 << 20
	f := newGCFloor(floor)
	f.start()
	defer f.stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the cleanup runs on its own goroutine
		p, goal := readGC()
		if p > 100 && goal >= floor*95/100 && goal <= floor*105/100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d, heap goal %d MiB after the floor's adjustment; want a goal of about %d MiB", p, goal>>20, floor>>20)
		}
	}
	f.stop()
	if p, _ := readGC(); p != 100 {
		t.Fatalf("GOGC %d after stop, want 100", p)
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if p, _ := readGC(); p != 100 {
		t.Fatalf("GOGC %d after a cycle past stop, want 100", p)
	}
}
