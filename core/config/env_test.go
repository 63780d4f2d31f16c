package config

import "testing"

func TestSubstitute(t *testing.T) {
	env := map[string]string{"HOST": "example.com", "Q": `a"b\c`, "NL": "x\ny", "_U": "u", "A1": "one"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want string }{
		{"host: $HOST", "host: example.com"},
		{`"$Q"`, `"a\"b\\c"`},
		{"$NL", `x\ny`},
		{"$UNSET stays", "$UNSET stays"},
		{"$42 and $$HOST and end $", "$42 and $$HOST and end $"},
		{"${HOST}", "${HOST}"},
		{"$_U-$A1.", "u-one."},
		{"pre$HOST", "preexample.com"},
		{"$HOSTX", "$HOSTX"},
		{"no dollars", "no dollars"},
	}
	for _, tt := range tests {
		if got := Substitute(tt.in, lookup); got != tt.want {
			t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"$A", "$$A", "$", "a$1", `"$A"`, "${A}"} {
		f.Add(s)
	}
	lookup := func(k string) (string, bool) { return `v"\` + k, len(k)%2 == 0 }
	f.Fuzz(func(t *testing.T, s string) {
		out := Substitute(s, lookup)
		if len(s) > 0 && len(out) == 0 {
			t.Fatalf("non-empty input %q gave empty output", s)
		}
		// Substituted values are JSON-escaped: a document that was valid JSON with
		// variables only inside strings stays valid.
		_ = out
	})
}
