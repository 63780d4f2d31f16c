package core

import (
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

// TestReportNotCompiled checks the advice for a key whose module is missing: a bundle and
// an xbuild line for a first-party feature, and "not available in any build" for a key no
// module of this version implements (never `bundle "full" has it`).
func TestReportNotCompiled(t *testing.T) {
	tests := []struct {
		key, path string
		want      string
	}{
		{"compression", "sites[0].compression", `compression is configured but feature "compress" is not compiled into this binary (bundle "minimal" has it, or build one with ` + "`xbuild --features compress`" + `; see ` + "`conduit features`" + `); ignored`},
		{"global.otlp", "global.otlp", `otlp is configured but feature "otlp" is not compiled into this binary (bundle "full" has it, or build one with ` + "`xbuild --features otlp`" + `; see ` + "`conduit features`" + `); ignored`},
		{"route.cache", "sites[0].proxy./a.cache", `cache is configured but feature "cache" is not compiled into this binary (bundle "standard" has it, or build one with ` + "`xbuild --features cache`" + `; see ` + "`conduit features`" + `); ignored`},
		{"handler.static", "sites[0].routes[0].static", `static is configured but feature "static" is not compiled into this binary (bundle "minimal" has it, or build one with ` + "`xbuild --features static`" + `; see ` + "`conduit features`" + `); ignored`},
		{"upload", "sites[0].upload", `upload is configured but feature "upload" is not compiled into this binary (bundle "full" has it, or build one with ` + "`xbuild --features upload`" + `; see ` + "`conduit features`" + `); ignored`},
		{"tcp", "tcp", `tcp is configured but feature "tcp" is not compiled into this binary (bundle "full" has it, or build one with ` + "`xbuild --features tcp`" + `; see ` + "`conduit features`" + `); ignored`},
		{"geoip", "geoip", `geoip is configured but no module in this binary handles it; ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			var d config.Diagnostics
			ReportNotCompiled(&d, tt.path, tt.key, MissingPolicy{Site: "a.example:80"})
			w := d.Warnings()
			if d.HasErrors() || len(w) != 1 || w[0].Path != tt.path || w[0].Message != tt.want {
				t.Fatalf("diagnostics %v\nwant warning at %s: %s", d.Warnings(), tt.path, tt.want)
			}
		})
	}
}

// TestReportNotCompiledGuard: a key that restricts access whose module is missing is an
// error naming the path, the feature and where to get it, unless global.allowMissingFeatures
// lists the feature, which turns it into a warning naming the site served without the guard.
func TestReportNotCompiledGuard(t *testing.T) {
	const site = "api.example:443"
	tests := []struct {
		name, key, path string
		allowed         []string
		wantErr         bool
		want            string
	}{
		{"jwt", "jwtAuth", "sites[0].jwtAuth", nil, true,
			`jwtAuth restricts access but feature "jwt" is not compiled into this binary, so nothing would enforce it; refusing to serve without it (bundle "standard" has it, or build one with ` + "`xbuild --features jwt`" + `; see ` + "`conduit features`" + `; to drop the guard on purpose, list "jwt" in global.allowMissingFeatures)`},
		{"route rate limit", "route.rateLimit", "sites[0].proxy./api.rateLimit", []string{"jwt"}, true,
			`rateLimit restricts access but feature "ratelimit" is not compiled into this binary, so nothing would enforce it; refusing to serve without it (bundle "minimal" has it, or build one with ` + "`xbuild --features ratelimit`" + `; see ` + "`conduit features`" + `; to drop the guard on purpose, list "ratelimit" in global.allowMissingFeatures)`},
		{"middleware type", "middleware.script", "sites[0].middleware[0].type", nil, true,
			`middleware type "script" restricts access but feature "script" is not compiled into this binary, so nothing would enforce it; refusing to serve without it (bundle "full" has it, or build one with ` + "`xbuild --features script`" + `; see ` + "`conduit features`" + `; to drop the guard on purpose, list "script" in global.allowMissingFeatures)`},
		{"jwt allowed", "jwtAuth", "sites[0].jwtAuth", []string{"ipfilter", "jwt"}, false,
			`jwtAuth restricts access but feature "jwt" is not compiled into this binary; global.allowMissingFeatures lists "jwt", so site api.example:443 serves WITHOUT this guard`},
		{"allowing a behaviour feature changes nothing", "compression", "compression", []string{"compress"}, false,
			`compression is configured but feature "compress" is not compiled into this binary (bundle "minimal" has it, or build one with ` + "`xbuild --features compress`" + `; see ` + "`conduit features`" + `); ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d config.Diagnostics
			ReportNotCompiled(&d, tt.path, tt.key, MissingPolicy{Allowed: tt.allowed, Site: site})
			got := d.Warnings()
			if tt.wantErr {
				got = d.Errors()
			}
			if d.Len() != 1 || len(got) != 1 || got[0].Path != tt.path || got[0].Message != tt.want {
				t.Fatalf("errors %v warnings %v\nwant (error=%v) at %s: %s", d.Errors(), d.Warnings(), tt.wantErr, tt.path, tt.want)
			}
		})
	}
}

// TestPlannedFeaturesHaveNoBundle: a feature no module implements yet is never advertised
// with a bundle or an xbuild line.
func TestPlannedFeaturesHaveNoBundle(t *testing.T) {
	if len(plannedKeys) == 0 {
		t.Skip("no planned keys left in core/catalog.go")
	}
	planned := map[string]bool{}
	for _, p := range plannedKeys {
		e, ok := LookupCatalog(p.Key)
		if !ok || e.Available() || e.Bundle != "" || e.XBuild() != "" {
			t.Errorf("%s: %+v (known %v), want a planned key with no bundle", p.Key, e, ok)
		}
		planned[p.Feature] = true
	}
	for _, f := range CatalogFeatures() {
		if planned[f.Name] && f.Bundle != "" {
			t.Errorf("feature %s advertised in bundle %q", f.Name, f.Bundle)
		}
	}
}
