package proxy

import (
	"github.com/conduitproxy/conduit/core/config"
)

// The proxy's config types for `conduit schema` (core.Module.ConfigTypes): what
// provisionSite, buildHandler and decodeTarget accept, never less.

// SiteProxy is the type of the site's `proxy` key, for the schema: a URL, an array of
// targets (one route for "/"), or an object that is either a route object (no key starts
// with "/" and some key is a route key; provisionSite warns) or a map of path prefix → target.
type SiteProxy struct{}

// HandlerProxy is the type of a routes[] entry's `proxy`, for the schema: a URL, an array of
// targets or a route object; null is an absent proxy (core/server/site.go).
type HandlerProxy struct{}

// targetObject is Target's object form, as decoded by Target.UnmarshalConfig.
type targetObject struct {
	URL    string `json:"url" cfg:"required" doc:"the upstream's absolute http:// or https:// URL"`
	Weight uint32 `json:"weight" minimum:"1" default:"1" doc:"the upstream's share under weighted-round-robin"`
}

// ConfigSchema implements config.SchemaProvider: a URL string or {url, weight}.
func (Target) ConfigSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "string", "description": "an upstream URL"},
		config.Schema(targetObject{}),
	}}
}

// routeSchema is the schema of a route object (RouteConfig): its keys, typed, and the keys
// other modules own in it (cache, rateLimit, extAuthz), typed by those modules through the
// schema's "#/$defs/routeKeys" (core/cli.BuildSchema).
func routeSchema() map[string]any {
	s := config.Schema(RouteConfig{})
	props := s["properties"].(map[string]any)
	strategies := append([]string{""}, Strategies...)
	config.Annotate(props["strategy"].(map[string]any), config.FieldDoc{Enum: strategies, Default: "round-robin", Description: "load-balancing strategy"})
	config.Annotate(props["groupStrategy"].(map[string]any), config.FieldDoc{Enum: strategies, Description: "strategy across groups"})
	group := props["groups"].(map[string]any)["items"].(map[string]any)
	config.Annotate(group["properties"].(map[string]any)["strategy"].(map[string]any), config.FieldDoc{Enum: strategies})
	retry := props["retry"].(map[string]any)
	conditions := make([]any, len(retryConditions))
	for i, c := range retryConditions {
		conditions[i] = c
	}
	retry["properties"].(map[string]any)["conditions"].(map[string]any)["items"] = map[string]any{"type": "string", "enum": conditions}
	for _, k := range []string{"cache", "rateLimit", "extAuthz"} {
		// Open here; typed by the owning module through routeKeys.
		props[k] = map[string]any{"description": "owned by another module; see $defs.routeKeys"}
	}
	s["allOf"] = []any{map[string]any{"$ref": "#/$defs/routeKeys"}}
	return s
}

// targetsSchema is the array form: targets, round-robin.
func targetsSchema() map[string]any {
	return map[string]any{"type": "array", "items": config.Schema(Target{}), "description": "upstreams, round-robin"}
}

// routeTargetSchema is what decodeTarget accepts: a URL, an array of targets or a route
// object.
func routeTargetSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "string", "description": "one upstream URL"},
		targetsSchema(),
		routeSchema(),
	}}
}

// ConfigSchema implements config.SchemaProvider (see SiteProxy).
func (SiteProxy) ConfigSchema() map[string]any {
	anyRouteKey := make([]any, len(routeObjectKeys))
	for i, k := range routeObjectKeys {
		anyRouteKey[i] = map[string]any{"required": []any{k}}
	}
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "string", "description": "one upstream URL for every path"},
		targetsSchema(),
		map[string]any{
			"type": "object",
			// looksLikeRouteObject: no key starts with "/" and some key is a route key.
			"if": map[string]any{
				"propertyNames": map[string]any{"not": map[string]any{"pattern": "^/"}},
				"anyOf":         anyRouteKey,
			},
			"then": routeSchema(),
			// A prefix map: each "/prefix" to a target; provisionSite refuses other keys
			// (a format error, not compared) without decoding their values.
			"else": map[string]any{"patternProperties": map[string]any{"^/": routeTargetSchema()}},
		},
	}}
}

// ConfigSchema implements config.SchemaProvider (see HandlerProxy).
func (HandlerProxy) ConfigSchema() map[string]any {
	return config.Nullable(routeTargetSchema())
}

// configTypes are the proxy's entries of core.Module.ConfigTypes.
var configTypes = map[string]any{
	"proxy":                 SiteProxy{},
	"handler.proxy":         HandlerProxy{},
	"requestTransform":      Transform{},
	"responseTransform":     Transform{},
	"maskErrors":            false,
	"allowDuplicateChunked": false,
	"outlierDetection":      OutlierConfig{},
}
