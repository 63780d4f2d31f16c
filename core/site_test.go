package core

import "testing"

func TestRouteName(t *testing.T) {
	ctx := &SiteContext{Site: &Site{Path: "sites[0]"}}
	cases := []struct{ path, key, want string }{
		{"sites[0].proxy.rateLimit", "rateLimit", "/"},
		{"sites[0].proxy./api.cache", "cache", "/api"},
		{"sites[0].proxy./v1.2.rateLimit", "rateLimit", "/v1.2"},
		{"sites[0].routes[3].proxy.cache", "cache", "routes[3]"},
		{"sites[0].consumers[1].rateLimit", "rateLimit", "consumers[1]"},
	}
	for _, tc := range cases {
		if got := ctx.RouteName(tc.path, tc.key); got != tc.want {
			t.Errorf("RouteName(%q, %q) = %q, want %q", tc.path, tc.key, got, tc.want)
		}
	}
	top := &SiteContext{Site: &Site{}} // the single-site shape: paths start at the top
	if got := top.RouteName("proxy./api.rateLimit", "rateLimit"); got != "/api" {
		t.Errorf("top-level shape: %q", got)
	}
}
