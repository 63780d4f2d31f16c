package config

import (
	"strings"
	"testing"
	"time"
)

type retryT struct {
	Attempts   *uint32  `json:"attempts" cfg:"required"`
	Conditions []string `json:"conditions"`
}

type routeT struct {
	Targets []string `json:"targets"`
	Retry   *retryT  `json:"retry"`
	Weight  uint8    `json:"weight"`
	Ratio   float64  `json:"ratio"`
	MaxAge  Humantime
}

func TestDecodePathsInErrors(t *testing.T) {
	node := map[string]Node{
		"targets": []Node{"http://a", map[string]Node{}},
		"retry":   map[string]Node{"conditions": "5xx", "atempts": 2.0},
		"weight":  300.0,
		"ratio":   "x",
	}
	var d Diagnostics
	var r routeT
	Decode(node, "sites[0].proxy./api", &r, &d)
	got := []string{}
	for _, e := range d.Errors() {
		got = append(got, e.String())
	}
	want := []string{
		"error at sites[0].proxy./api.targets[1]: must be a string",
		"error at sites[0].proxy./api.retry.attempts: is required",
		"error at sites[0].proxy./api.retry.conditions: must be an array",
		"error at sites[0].proxy./api.weight: must be at most 255",
		"error at sites[0].proxy./api.ratio: must be a number",
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("missing %q in:\n%s", w, joined)
		}
	}
	warns := d.Warnings()
	if len(warns) != 1 || !strings.Contains(warns[0].String(), `did you mean "attempts"`) {
		t.Errorf("warnings = %v", warns)
	}
}

func TestDecodeScalarsIntoStrings(t *testing.T) {
	var v struct {
		H map[string]string `json:"headers"`
	}
	var d Diagnostics
	Decode(map[string]Node{"headers": map[string]Node{"X-Version": 2, "X-On": true}}, "", &v, &d)
	if d.HasErrors() || v.H["X-Version"] != "2" || v.H["X-On"] != "true" {
		t.Fatalf("%v %v", v.H, d.Errors())
	}
}

func TestHumantime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"7d", 7 * 24 * time.Hour, false},
		{"1y", 365 * 24 * time.Hour, false},
		{"30m", 30 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{"120", 2 * time.Minute, false},
		{"10x", 0, true},
		{"", 0, true},
		{"h", 0, true},
		{"99999999999999999999y", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseHumantime(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseHumantime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	for _, out := range []string{s.String(), s.GoString()} {
		if strings.Contains(out, "hunter2") {
			t.Fatal("secret leaked")
		}
	}
	if b, _ := s.MarshalJSON(); strings.Contains(string(b), "hunter2") {
		t.Fatal("secret leaked in JSON")
	}
	if got := RedactURL("redis://user:pw@host:6379/0"); strings.Contains(got, "pw") || !strings.Contains(got, "host:6379") {
		t.Fatalf("RedactURL = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"jwtAuth", "rateLimit", "proxy", "static"}
	if s := Suggest("jwtAuht", keys); s != "jwtAuth" {
		t.Errorf("got %q", s)
	}
	if s := Suggest("ratelimit", keys); s != "rateLimit" {
		t.Errorf("got %q", s)
	}
	if s := Suggest("completelydifferent", keys); s != "" {
		t.Errorf("got %q", s)
	}
}

func TestDecodeToggle(t *testing.T) {
	type obj struct {
		Name string `json:"name"`
	}
	cases := []struct {
		name        string
		node        Node
		wantEnabled bool
		wantDecoded bool
		wantName    string
		wantErr     string
	}{
		{"true", true, true, false, "", ""},
		{"false", false, false, false, "", ""},
		{"object", map[string]Node{"name": "x"}, true, true, "x", ""},
		{"wrong type", "yes", false, false, "", `must be true, false or {name}, got "yes"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Diagnostics
			var enabled bool
			var o obj
			decoded := DecodeToggle(tc.node, "feature", &d, "true, false or {name}", &enabled, &o)
			if enabled != tc.wantEnabled || decoded != tc.wantDecoded || o.Name != tc.wantName {
				t.Fatalf("enabled=%v decoded=%v name=%q", enabled, decoded, o.Name)
			}
			errs := d.Errors()
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Fatalf("unexpected errors %v", errs)
			case tc.wantErr != "" && (len(errs) != 1 || errs[0].Path != "feature" || errs[0].Message != tc.wantErr):
				t.Fatalf("errors %+v, want one at feature: %q", errs, tc.wantErr)
			}
		})
	}
}

// TestSecretWithUnsetVariable decodes secrets from a parsed document with some variables
// unset: a reference to an unset one is an error naming the variable (not the value), a
// modular-crypt hash or a value that merely came from the environment is not.
func TestSecretWithUnsetVariable(t *testing.T) {
	env := map[string]string{"SET": "v", "DOLLAR": "$LOOKS_LIKE_A_REF"}
	cases := []struct {
		yaml, want string // want: substring of the error, "" for none
	}{
		{"s: $UNSET", "environment variable UNSET is not set"},
		{"s: \"pre-$UNSET-$ALSO\"", "environment variable UNSET, ALSO is not set"},
		{"s: redis://:$UNSET@h:6379", "environment variable UNSET is not set"},
		{"s: ${UNSET}", "${NAME} is not expanded (write $UNSET)"},
		{"s: $SET", ""},
		{"s: $DOLLAR", ""},
		{"s: \"$2y$10$abcdefghijklmnopqrstuv\"", ""},
		{"s: \"$apr1$saltsalt$r/QcFGT5pNL28bNkeDMHR.\"", ""},
		{"s: \"$6$rounds=5000$salt$hash\"", ""},
		{"s: $$UNSET", ""},
	}
	for _, tc := range cases {
		doc, err := Parse([]byte(tc.yaml), FormatYAML, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		var d Diagnostics
		d.Track(doc.Substitutions)
		var out struct {
			S Secret `json:"s"`
		}
		Decode(doc.Sites[0], "x", &out, &d)
		got := ""
		if e := d.Err(); e != nil {
			got = e.Error()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) || (got != "" && !strings.HasPrefix(got, "error at x.s: ")) {
			t.Errorf("%s: %q, want %q", tc.yaml, got, tc.want)
		}
	}
}

// TestDecodeRequiredNull: null for a required key is the error of a missing key (a required
// pointer left nil would reach the module's code as if it were set), and null for an optional
// pointer leaves it nil without a diagnostic.
func TestDecodeRequiredNull(t *testing.T) {
	tests := []struct {
		name string
		node Node
		want string // "" for no error
	}{
		{"required null", map[string]Node{"attempts": nil}, "error at r.attempts: is required (got null)"},
		{"required absent", map[string]Node{}, "error at r.attempts: is required"},
		{"optional null", map[string]Node{"attempts": 1, "conditions": nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Diagnostics
			var r retryT
			Decode(tt.node, "r", &r, &d)
			errs := d.Errors()
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Fatalf("errors %v", errs)
			case tt.want != "" && (len(errs) != 1 || errs[0].String() != tt.want):
				t.Fatalf("errors %v, want %q", errs, tt.want)
			}
		})
	}
}
