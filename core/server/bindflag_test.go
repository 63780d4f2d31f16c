package server

import "testing"

// TestParseBindFlag pins the spellings `conduit --bind` takes.
func TestParseBindFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		err  bool
	}{
		{"", "", 0, false},
		{"127.0.0.1", "127.0.0.1", 0, false},
		{"::1", "::1", 0, false},
		{"[::1]", "::1", 0, false},
		{"127.0.0.1:9000", "127.0.0.1", 9000, false},
		{"[::1]:9000", "::1", 9000, false},
		{":9000", "", 9000, false},
		{"127.0.0.1:0", "", 0, true},
		{"127.0.0.1:65536", "", 0, true},
		{"127.0.0.1:+80", "", 0, true},
		{"127.0.0.1:http", "", 0, true},
	} {
		host, port, err := ParseBindFlag(tc.in)
		if (err != nil) != tc.err || host != tc.host || port != tc.port {
			t.Errorf("ParseBindFlag(%q) = %q, %d, %v; want %q, %d, error %v", tc.in, host, port, err, tc.host, tc.port, tc.err)
		}
	}
}
