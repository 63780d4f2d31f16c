package server

import "github.com/conduitproxy/conduit/core/config"

// http2Options is the object shape of the `http2` key (HTTP2Bool.UnmarshalConfig).
type http2Options struct {
	MaxConcurrentStreams *uint32 `json:"maxConcurrentStreams" doc:"the concurrent streams a client may open on one connection"`
	InitialWindowSize    *uint32 `json:"initialWindowSize" minimum:"65535" maximum:"2147483647" doc:"the receive buffer of each stream, in bytes"`
	H2C                  bool    `json:"h2c" default:"false" doc:"serves HTTP/2 without TLS (prior knowledge) on a site without tls"`
}

// ConfigSchema implements config.SchemaProvider: a boolean (false turns HTTP/2 off for the
// site's port) or the options object.
func (HTTP2Bool) ConfigSchema() map[string]any {
	return config.Toggle(config.Schema(http2Options{}))
}

// SiteCoreSchema returns the JSON Schema of each key the core decodes for a site (host,
// bind, port, tls, http2, routes, middleware), by key, from the types decodeSiteCore and
// buildRoutes decode them into; `conduit schema` adds the modules' keys (tls.acme, the
// handler keys of routes[], the entries of middleware[]).
func SiteCoreSchema() map[string]any {
	props := config.Schema(siteCore{})["properties"].(map[string]any)
	config.Annotate(props["host"].(map[string]any), config.FieldDoc{Description: "the host name the site answers (* or absent: any host)"})
	config.Annotate(props["bind"].(map[string]any), config.FieldDoc{Description: "the address the site's listener binds to"})
	config.Annotate(props["port"].(map[string]any), config.FieldDoc{Description: "the port the site listens on; 443 with tls, else 80", Minimum: 1, Maximum: 65535})
	config.Annotate(props["tls"].(map[string]any), config.FieldDoc{Description: "TLS: certificate files, mTLS, or ACME"})
	config.Annotate(props["http2"].(map[string]any), config.FieldDoc{Description: "HTTP/2 settings; false turns HTTP/2 off for the site's port"})
	props["routes"] = map[string]any{"type": []any{"array", "null"}, "description": "routes matched in order, before the proxy map",
		"items": config.Schema(routeEntryConfig{})}
	props["middleware"] = map[string]any{"type": []any{"array", "null"}, "description": "middleware entries, each with a type, in declaration order"}
	return props
}
