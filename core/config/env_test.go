package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"HOST": "example.com", "Q": `a"b\c`, "NL": "x\ny", "_U": "u", "A1": "one", "D": "$HOST"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		unset    []string
	}{
		{"host: $HOST", "host: example.com", nil},
		{`"$Q"`, `"a"b\c"`, nil},
		{"$NL", "x\ny", nil},
		{"$UNSET stays", "$UNSET stays", []string{"UNSET"}},
		{"$42 and $$HOST and end $", "$42 and $$HOST and end $", nil},
		{"${HOST}", "${HOST}", nil},
		{"$_U-$A1.", "u-one.", nil},
		{"pre$HOST", "preexample.com", nil},
		{"$HOSTX", "$HOSTX", []string{"HOSTX"}},
		{"$D", "$HOST", nil}, // an inserted value is not expanded again
		{"no dollars", "no dollars", nil},
	}
	for _, tt := range tests {
		got, _, unset := Expand(tt.in, lookup)
		if got != tt.want || strings.Join(unset, ",") != strings.Join(tt.unset, ",") {
			t.Errorf("Expand(%q) = %q unset %v, want %q unset %v", tt.in, got, unset, tt.want, tt.unset)
		}
	}
}

// FuzzSubstitute gives a variable an arbitrary value and substitutes it into a YAML value
// (unquoted, double- and single-quoted, in a flow list) and JSON (in a string and bare): the
// document always parses, the value arrives byte for byte (or, unquoted, as the number or boolean it
// spells), and no other scalar changes.
func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"a #b", "*x", "!!int 5", "x\ny", `"q'`, "{a: 1}", "k: v", "8080", "1e3",
		"true", "$V", "$$", "", "- x", "18446744073709551615", "08", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		lookup := func(k string) (string, bool) { return value, k == "V" }
		docs := []struct {
			src    string
			format Format
			plain  bool
		}{
			{"x: $V\ny: '$'\n", FormatYAML, true},
			{"x: \"$V\"\ny: '$'\n", FormatYAML, false},
			{"x: '$V'\ny: '$'\n", FormatYAML, false},
			{"x: [pre-$V]\ny: '$'\n", FormatYAML, false},
			{`{"x":"$V","y":"$"}`, FormatJSON, false},
			{`{"x":$V,"y":"$"}`, FormatJSON, true},
		}
		for _, d := range docs {
			doc, err := Parse([]byte(d.src), d.format, lookup)
			if err != nil {
				t.Fatalf("%q with V=%q: %v", d.src, value, err)
			}
			site := doc.Sites[0]
			got := site["x"]
			if l, ok := got.([]Node); ok {
				if len(l) != 1 || l[0] != "pre-"+value {
					t.Fatalf("%q with V=%q: %#v", d.src, value, got)
				}
			} else if s, ok := got.(string); ok {
				if s != value {
					t.Fatalf("%q with V=%q: got %q", d.src, value, s)
				}
			} else if !d.plain || plainTag(value) == "" || !sameScalar(got, value) {
				t.Fatalf("%q with V=%q: got %#v", d.src, value, got)
			}
			if site["y"] != "$" || len(site) != 2 {
				t.Fatalf("%q with V=%q: document changed: %#v", d.src, value, site)
			}
		}
	})
}

// sameScalar reports whether a typed scalar is what the text v spells.
func sameScalar(n Node, v string) bool {
	switch x := n.(type) {
	case bool:
		return strings.EqualFold(v, strconv.FormatBool(x))
	case int:
		i, err := strconv.ParseInt(v, 0, 64)
		return err == nil && int64(x) == i
	case uint64:
		u, err := strconv.ParseUint(v, 0, 64)
		return err == nil && x == u
	case float64:
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && (f == x || f != f && x != x)
	}
	return false
}
