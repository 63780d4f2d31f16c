package main

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/cmd/conduit-bench/loadstat"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(readTestdata(t, "wrk-h1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 208104 || r.errors != 0 || r.p50us != 521 || r.p99us != 779 || r.p999us != 2076 {
		t.Errorf("got %+v", r)
	}
	if math.Abs(r.rps-69340) > 1 {
		t.Errorf("rps = %.1f, want about 69340 (wrk printed 69340.08)", r.rps)
	}
}

func TestParseWrkWithoutScriptLines(t *testing.T) {
	out := readTestdata(t, "wrk-h1.txt")
	out = out[:strings.Index(out, "CB ")]
	if _, err := parseWrk(out); err == nil {
		t.Error("want an error when the Lua report lines are missing")
	}
}

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(readTestdata(t, "h2load-rate.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 14960 || r.errors != 0 || r.rps != 4986.67 || r.seconds != 3 {
		t.Errorf("got %+v", r)
	}
}

func TestParseH2loadCountsNon2xxAsErrors(t *testing.T) {
	out := "finished in 850.12ms, 100.00 req/s, 1KB/s\n" +
		"requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout\n" +
		"status codes: 60 2xx, 0 3xx, 40 4xx, 0 5xx\n"
	r, err := parseH2load(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 60 || r.errors != 40 || math.Abs(r.seconds-0.85012) > 1e-9 {
		t.Errorf("got %+v", r)
	}
}

func TestParseH2loadLogPercentiles(t *testing.T) {
	f, err := os.Open("testdata/h2load-requests.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lat, err := parseH2loadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	// Expected values from `cut -f3 | sort -n` of the same file, nearest rank.
	if len(lat) != 200 || lat[0] != 48 {
		t.Fatalf("got %d latencies, min %v", len(lat), lat[0])
	}
	for _, c := range []struct{ p, want float64 }{{50, 205}, {99, 495}, {99.9, 502}, {100, 502}} {
		if got := loadstat.Percentile(lat, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestParseH2loadLogSkipsNon2xx(t *testing.T) {
	lat, err := parseH2loadLog(strings.NewReader("1\t200\t30\n2\t502\t9000\n3\t204\t10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 2 || lat[0] != 10 || lat[1] != 30 {
		t.Errorf("got %v", lat)
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a ')' must not shift the fields.
	line := "4242 (my (weird) proc) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 75 12 8 20 0 3 0 12345 0 0"
	st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.pgrp != 4240 || st.ticks != 325 || st.children != 20 {
		t.Errorf("got %+v", st)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 244098.4: "244,098", -1234567: "-1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestParseH2loadTimedRunStatusOvercount(t *testing.T) {
	// h2load -D: responses after the window are in the status counts but not in "done".
	out := "finished in 1.00s, 12458.00 req/s, 2.12MB/s\n" +
		"requests: 12458 total, 12508 started, 12458 done, 12458 succeeded, 0 failed, 0 errored, 0 timeout\n" +
		"status codes: 12481 2xx, 0 3xx, 0 4xx, 0 5xx\n"
	r, err := parseH2load(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 12458 || r.errors != 0 {
		t.Errorf("got %+v, want 12458 requests and 0 errors", r)
	}
}

// TestParseWrkReadsLoadstat checks that the harness reads what its own load generators print
// (h3load prints a loadstat.Summary with WriteCB) as it reads wrk's report lines.
func TestParseWrkReadsLoadstat(t *testing.T) {
	var rec loadstat.Recorder
	for _, us := range []float64{900, 100, 500, 300, 700} {
		rec.OK(us)
	}
	rec.Fail()
	var out bytes.Buffer
	if err := rec.Summarize(2.5).WriteCB(&out); err != nil {
		t.Fatal(err)
	}
	r, err := parseWrk("h3load banner\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{requests: 5, errors: 1, seconds: 2.5, rps: 2, p50us: 500, p99us: 900, p999us: 900}
	if r != want {
		t.Fatalf("parsed %+v, want %+v", r, want)
	}
}
