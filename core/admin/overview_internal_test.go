package admin

import (
	"slices"
	"testing"

	"github.com/conduitproxy/conduit/core"
)

func TestBundleOf(t *testing.T) {
	upTo := func(bundle string) []string {
		var out []string
		for _, f := range core.CatalogFeatures() {
			if r := slices.Index(bundleOrder, f.Bundle); r >= 0 && r <= slices.Index(bundleOrder, bundle) {
				out = append(out, f.Name)
			}
		}
		return out
	}
	minimal, standard, full := upTo("minimal"), upTo("standard"), upTo("full")
	if len(minimal) == 0 || len(standard) <= len(minimal) || len(full) <= len(standard) {
		t.Fatalf("catalog bundles: %d %d %d features", len(minimal), len(standard), len(full))
	}
	cases := []struct {
		name     string
		features []string
		want     string
	}{
		{"minimal", minimal, "minimal"},
		{"standard", standard, "standard"},
		{"full", full, "full"},
		{"standard without one", standard[1:], "custom"},
		{"minimal plus a third-party feature", append(slices.Clone(minimal), "example-header"), "custom"},
		{"nothing", nil, "custom"},
	}
	for _, tc := range cases {
		if got := bundleOf(tc.features); got != tc.want {
			t.Errorf("%s: bundleOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}
