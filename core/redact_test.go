package core

import (
	"strings"
	"testing"
)

func TestRedactQuery(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"page=2&sort=asc", "page=2&sort=asc"},
		{"api_key=s3cr3t", "api_key=REDACTED"},
		{"page=2&api_key=s3cr3t&x=1", "page=2&api_key=REDACTED&x=1"},
		{"API_KEY=a&Access_Token=b&X-Amz-Signature=c", "API_KEY=REDACTED&Access_Token=REDACTED&X-Amz-Signature=REDACTED"},
		{"api%5Fkey=a&%61pikey=b", "api%5Fkey=REDACTED&%61pikey=REDACTED"},           // percent-encoded names
		{"x=1;token=abc;y=2", "x=1;token=REDACTED;y=2"},                              // ';' separators
		{"password=&token", "password=&token"},                                       // nothing to hide
		{"token=a=b&sig=c%26d", "token=REDACTED&sig=REDACTED"},                       // '=' and '%26' inside a value
		{"mytoken=a&token_type=bearer&keys=1", "mytoken=a&token_type=bearer&keys=1"}, // whole names only
		{"key=1&key=2", "key=REDACTED&key=REDACTED"},
		{"a%ZZ=1&secret=x", "a%ZZ=1&secret=REDACTED"}, // a malformed name elsewhere does not stop it
	}
	for _, tc := range cases {
		if got := RedactQuery(tc.in); got != tc.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	targets := []struct{ in, want string }{
		{"/p", "/p"},
		{"/p?api_key=k", "/p?api_key=REDACTED"},
		{"http://h/p?a=1&token=t", "http://h/p?a=1&token=REDACTED"},
	}
	for _, tc := range targets {
		if got := RedactTarget(tc.in); got != tc.want {
			t.Errorf("RedactTarget(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactQueryAllocatesNothingWhenClean(t *testing.T) {
	q := "page=2&sort=asc&filter=a%20b"
	if n := testing.AllocsPerRun(100, func() { _ = RedactQuery(q) }); n != 0 {
		t.Fatalf("%v allocations for a query without credentials", n)
	}
}

// FuzzRedactQuery: whatever the query, the value of a credential parameter never survives,
// and redacting twice changes nothing more.
func FuzzRedactQuery(f *testing.F) {
	for _, s := range []string{"api_key=x", "a=1&token=y;sig=z", "%61pi_key=q&&==&", "password"} {
		f.Add(s, "SECRETVALUE")
	}
	f.Fuzz(func(t *testing.T, q, secret string) {
		if len(secret) < 4 || strings.ContainsAny(secret, "&;=%+") {
			return
		}
		in := q + "&api_key=" + secret + ";Token=" + secret
		out := RedactQuery(in)
		if strings.Contains(out, secret) && !strings.Contains(q, secret) && !strings.Contains("api_key=;Token="+Redacted, secret) {
			t.Fatalf("RedactQuery(%q) = %q keeps the secret", in, out)
		}
		if again := RedactQuery(out); again != out {
			t.Fatalf("not idempotent: %q then %q", out, again)
		}
	})
}
