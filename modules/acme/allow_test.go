package acme

import (
	"strings"
	"testing"
)

func TestAllowList(t *testing.T) {
	a, err := compileAllowList([]string{"Shop.Example.com", "*.apps.example.org", "exact.test."})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"shop.example.com", true},
		{"SHOP.example.com.", true},
		{"x.shop.example.com", false},
		{"a.apps.example.org", true},
		{"a-b.apps.example.org", true},
		{"apps.example.org", false},
		{".apps.example.org", false},
		{"a.b.apps.example.org", false},
		{"exact.test", true},
		{"evil.test", false},
		{"", false},
	} {
		if got := a.match(tc.name); got != tc.want {
			t.Errorf("match(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range [][]string{{"*"}, {""}, {"a.*.com"}, {"*.*.com"}, {"bad_name.com"}, {"-a.com"}, {"*."}} {
		if _, err := compileAllowList(bad); err == nil {
			t.Errorf("compileAllowList(%q) accepted", bad)
		}
	}
}

// FuzzAllowList checks that matching never panics and that a match is always either listed
// exactly or one valid label under a *.suffix entry.
func FuzzAllowList(f *testing.F) {
	f.Add("*.example.com", "a.example.com")
	f.Add("example.com", "EXAMPLE.com.")
	f.Add("*.a.b", "..a.b")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		a, err := compileAllowList([]string{pattern})
		if err != nil {
			return
		}
		if !a.match(name) {
			return
		}
		p := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(pattern), "."))
		n := strings.ToLower(strings.TrimSuffix(name, "."))
		if n == p {
			return
		}
		if !strings.HasPrefix(p, "*.") || !strings.HasSuffix(n, p[1:]) {
			t.Fatalf("%q matched %q", p, n)
		}
		label := n[:len(n)-len(p)+1]
		if label == "" || strings.Contains(label, ".") || !validName(label) {
			t.Fatalf("%q matched %q through label %q", p, n, label)
		}
	})
}
