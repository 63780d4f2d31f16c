package core

import (
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// CatalogEntry describes a first-party feature that may or may not be compiled into this
// binary, so that a config using it can be told which feature and bundle provide it.
type CatalogEntry struct {
	// Feature is the module's feature name (what `xbuild --features` takes).
	Feature string
	// Bundle is the smallest bundle that contains the feature: minimal, standard or full.
	Bundle string
}

// Catalog maps every site key, global key and route key of the Conduit schema to the feature
// that owns it. It is static data about first-party modules; it lets a binary that lacks a
// module still name it.
var Catalog = map[string]CatalogEntry{
	// site keys
	"proxy": {"proxy", "minimal"}, "static": {"static", "minimal"}, "staticOptions": {"static", "minimal"},
	"fallback": {"fallback", "minimal"}, "compression": {"compress", "minimal"},
	"hotReload": {"hotreload", "minimal"}, "healthCheck": {"health", "minimal"},
	"metrics": {"metrics", "minimal"}, "logging": {"accesslog", "minimal"},
	"responseTime": {"timing", "minimal"}, "serverTiming": {"timing", "minimal"},
	"securityHeaders": {"headers", "minimal"}, "headers": {"headers", "minimal"},
	"requestTransform": {"proxy", "minimal"}, "responseTransform": {"proxy", "minimal"},
	"maskErrors": {"proxy", "minimal"}, "allowDuplicateChunked": {"proxy", "minimal"},
	"outlierDetection": {"proxy", "minimal"},
	"cors":             {"cors", "minimal"}, "ipFilter": {"ipfilter", "minimal"}, "limits": {"limits", "minimal"},
	"rateLimit": {"ratelimit", "minimal"}, "basicAuth": {"basicauth", "minimal"},
	"apiKey": {"apikey", "minimal"}, "redirects": {"redirects", "minimal"},
	"jwtAuth": {"jwt", "standard"}, "consumers": {"consumers", "standard"},
	"forwardAuth": {"forwardauth", "standard"},
	"middleware":  {"script", "full"}, "tcp": {"tcp", "full"}, "upload": {"upload", "full"},
	"faultInjection": {"faults", "full"},
	// global keys
	"global.otlp": {"otlp", "full"},
	// route keys
	"route.cache": {"cache", "standard"}, "route.rateLimit": {"ratelimit", "minimal"},
	// tls sub-keys
	"tls.acme": {"acme", "standard"},
}

// WarnNotCompiled records the warning for a key whose module is not in this binary: the
// section is ignored and the request path runs without it (fail-open, as the original).
//
// key is a catalog key: a site key ("jwtAuth"), "global.<key>", "route.<key>" or "tls.acme".
func WarnNotCompiled(d *config.Diagnostics, path, key string) {
	name := strings.TrimPrefix(key, "route.")
	if e, ok := Catalog[key]; ok {
		d.Warnf(path, "%s is configured but feature %q is not compiled into this binary (bundle %q has it; see `conduit features`); ignored", name, e.Feature, e.Bundle)
		return
	}
	d.Warnf(path, "%s is configured but no module in this binary handles it; ignored", name)
}

// NotCompiledMessage is WarnNotCompiled's text, for callers that report outside Diagnostics.
func NotCompiledMessage(key string) string {
	var d config.Diagnostics
	WarnNotCompiled(&d, "", key)
	return d.Warnings()[0].Message
}

// CatalogSiteKeys lists every site key the schema knows, compiled in or not, for
// suggestions on unknown keys.
func CatalogSiteKeys() []string {
	keys := []string{"host", "port", "tls", "http2", "routes"}
	for k := range Catalog {
		if len(k) > 0 && !containsDot(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}
