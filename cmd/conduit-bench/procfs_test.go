package main

import "testing"

func TestParseSteal(t *testing.T) {
	for _, c := range []struct {
		name, stat string
		want       uint64
	}{
		{"kernel with steal", "cpu  636789 273 225988 6151040 3030 0 46935 53572 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 53572},
		{"no steal field", "cpu  636789 273 225988 6151040 3030 0 46935\n", 0},
		{"per-CPU line first", "cpu0 1 2 3 4 5 6 7 8 0 0\n", 0},
		{"empty", "", 0},
		{"not a number", "cpu  1 2 3 4 5 6 7 x 0 0\n", 0},
	} {
		if got := parseSteal(c.stat); got != c.want {
			t.Errorf("%s: parseSteal = %d, want %d", c.name, got, c.want)
		}
	}
}
