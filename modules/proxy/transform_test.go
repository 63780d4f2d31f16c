package proxy

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestCompileTransformRefusesHeadersThatCannotBeSent(t *testing.T) {
	const base = "requestTransform"
	cases := []struct {
		name   string
		tr     Transform
		errors []string // "path: message fragment"; none for a valid transform
	}{
		{name: "valid", tr: Transform{SetHeaders: map[string]string{"X-A": "b\tc {{ jwt.sub }}", "X-Empty": ""}, RemoveHeaders: []string{"x-b"}}},
		{name: "CR LF in value", tr: Transform{SetHeaders: map[string]string{"X-A": "ok\r\nX-Injected: 1"}},
			errors: []string{"requestTransform.setHeaders.X-A: value contains a control character (byte 2)"}},
		{name: "NUL in value", tr: Transform{SetHeaders: map[string]string{"X-A": "a\x00"}},
			errors: []string{"requestTransform.setHeaders.X-A: value contains a control character (byte 1)"}},
		{name: "DEL in value", tr: Transform{SetHeaders: map[string]string{"X-A": "\x7f"}},
			errors: []string{"requestTransform.setHeaders.X-A: value contains a control character (byte 0)"}},
		{name: "LF in template text", tr: Transform{SetHeaders: map[string]string{"X-A": "{{ jwt.sub }}\n"}},
			errors: []string{"requestTransform.setHeaders.X-A: value contains a control character (byte 13)"}},
		{name: "space in name", tr: Transform{SetHeaders: map[string]string{"X A": "v"}},
			errors: []string{`requestTransform.setHeaders["X A"]: "X A" is not a valid header name`}},
		{name: "colon in name", tr: Transform{SetHeaders: map[string]string{"X-A:": "v"}},
			errors: []string{`requestTransform.setHeaders["X-A:"]: "X-A:" is not a valid header name`}},
		{name: "CRLF in name", tr: Transform{SetHeaders: map[string]string{"X-A\r\nX-B": "v"}},
			errors: []string{`requestTransform.setHeaders["X-A\r\nX-B"]: "X-A\r\nX-B" is not a valid header name`}},
		{name: "empty name", tr: Transform{SetHeaders: map[string]string{"": "v"}},
			errors: []string{`requestTransform.setHeaders[""]: "" is not a valid header name`}},
		{name: "bad removeHeaders entry", tr: Transform{RemoveHeaders: []string{"ok", "x\ny"}},
			errors: []string{`requestTransform.removeHeaders[1]: "x\ny" is not a valid header name`}},
		{name: "non-ASCII name", tr: Transform{RemoveHeaders: []string{"X-Ünicode"}},
			errors: []string{`requestTransform.removeHeaders[0]: "X-Ünicode" is not a valid header name`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d config.Diagnostics
			compileTransform(&c.tr, base, true, &d)
			var got []string
			for _, e := range d.Errors() {
				got = append(got, e.Path+": "+e.Message)
			}
			if len(got) != len(c.errors) {
				t.Fatalf("errors %q, want %q", got, c.errors)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.errors[i]) {
					t.Errorf("error %q, want it to start with %q", got[i], c.errors[i])
				}
			}
			for _, e := range d.Errors() {
				if strings.Contains(e.Message, "X-Injected") {
					t.Errorf("error %q prints the configured value", e.Message)
				}
			}
		})
	}
}
