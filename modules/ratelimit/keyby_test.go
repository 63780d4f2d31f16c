package ratelimit

import (
	"net/textproto"
	"regexp"
	"strings"
	"testing"
)

// keyByPattern is the pattern the original's JSON Schema gives keyBy (docs/compatibility.md),
// the oracle for ParseKeyBy.
var keyByPattern = regexp.MustCompile("^(ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$")

func TestParseKeyBy(t *testing.T) {
	tests := []struct{ in, header string }{
		{"ip", ""}, {"header:X-User-ID", "X-User-Id"}, {"header:x-api-key", "X-Api-Key"}, {"header:a~b", "A~b"},
	}
	for _, tt := range tests {
		h, err := ParseKeyBy(tt.in)
		if err != nil || h != tt.header {
			t.Errorf("ParseKeyBy(%q) = %q, %v; want %q", tt.in, h, err, tt.header)
		}
	}
	for _, bad := range []string{"", "IP", "header", "header:", "header:bad name", "cookie", "header:a:b", "header:é", " ip"} {
		if _, err := ParseKeyBy(bad); err == nil {
			t.Errorf("ParseKeyBy(%q) accepted", bad)
		}
	}
}

func FuzzParseKeyBy(f *testing.F) {
	for _, s := range []string{"ip", "header:X-User-ID", "header:", "header:bad name", "cookie", "header:a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseKeyBy(s)
		if ok := keyByPattern.MatchString(s); ok != (err == nil) {
			t.Fatalf("ParseKeyBy(%q) error %v, schema pattern match %v", s, err, ok)
		}
		if err == nil && s != "ip" && !strings.EqualFold(h, strings.TrimPrefix(s, "header:")) {
			t.Fatalf("ParseKeyBy(%q) header %q", s, h)
		}
		if err == nil && h != textproto.CanonicalMIMEHeaderKey(h) {
			t.Fatalf("header %q not canonical", h)
		}
	})
}
