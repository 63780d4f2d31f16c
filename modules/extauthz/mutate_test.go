package extauthz

import (
	"net/url"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func qp(kv ...string) []*corev3.QueryParameter {
	var out []*corev3.QueryParameter
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &corev3.QueryParameter{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestEditQuery(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		set       []*corev3.QueryParameter
		del       []string
		want      string
	}{
		{"nothing", "a=1&b=2", nil, nil, "a=1&b=2"},
		{"remove", "a=1&token=x&b=2&token=y", nil, []string{"token"}, "a=1&b=2"},
		{"remove encoded name", "a=1&%74oken=x", nil, []string{"token"}, "a=1"},
		{"remove is case-sensitive", "Token=x", nil, []string{"token"}, "Token=x"},
		{"set replaces every value", "user=a&x=1&user=b", qp("user", "alice"), nil, "x=1&user=alice"},
		{"set escapes", "", qp("q", "a b&c=d"), nil, "q=a+b%26c%3Dd"},
		{"set twice: last wins, once", "", qp("k", "1", "k", "2"), nil, "k=2"},
		{"empty pieces dropped", "&&a=1&", nil, []string{"zz"}, "a=1"},
		{"malformed escape kept", "a=%zz&b", nil, []string{"b"}, "a=%zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := editQuery(tc.raw, tc.set, tc.del); got != tc.want {
				t.Fatalf("editQuery(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

func FuzzEditQuery(f *testing.F) {
	f.Add("a=1&token=x&%74oken=y", "token", "user", "alice")
	f.Add("%zz=%&&=", "", "k", "")
	f.Fuzz(func(t *testing.T, raw, del, setK, setV string) {
		var set []*corev3.QueryParameter
		if setK != "" {
			set = qp(setK, setV)
		}
		out := editQuery(raw, set, []string{del})
		vals, err := url.ParseQuery(out)
		if err != nil && !strings.Contains(raw, "%") && !strings.Contains(raw, ";") {
			t.Fatalf("editQuery(%q) = %q does not parse: %v", raw, out, err)
		}
		if err == nil {
			if del != "" && del != setK && vals.Has(del) {
				t.Fatalf("editQuery(%q) kept removed %q: %q", raw, del, out)
			}
			if setK != "" && (len(vals[setK]) != 1 || vals[setK][0] != setV) {
				t.Fatalf("editQuery(%q) set %q=%q: %q", raw, setK, setV, out)
			}
		}
	})
}

func TestValidUTF8(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "é": "é", "a\xffb": "a!b", "\xc3": "!", "\xe2\x82": "!!"} {
		if got := validUTF8(in); got != want {
			t.Errorf("validUTF8(%q) = %q, want %q", in, got, want)
		}
	}
}
