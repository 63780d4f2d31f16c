package static

import "github.com/conduitproxy/conduit/core/config"

// The static module's config types for `conduit schema` (core.Module.ConfigTypes).

// dirListSchema is what dirList accepts: a directory or an array of them.
func dirListSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "string", "description": "a directory"},
		map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1, "description": "directories searched in order"},
	}}
}

// ConfigSchema implements config.SchemaProvider: the three forms of Dirs.UnmarshalConfig. A
// map key that does not start with "/" is refused (a format error, not compared) without
// its value being read; the schema types every value alike.
func (Dirs) ConfigSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		dirListSchema(),
		map[string]any{"type": "object", "minProperties": 1, "additionalProperties": dirListSchema(),
			"description": "URL prefix → directory or directories"},
	}}
}

// handlerDirs is the type of a routes[] entry's `static`: Dirs, or null for none (the server
// treats a null target as absent, core/server/site.go).
type handlerDirs struct{}

// ConfigSchema implements config.SchemaProvider.
func (handlerDirs) ConfigSchema() map[string]any {
	return config.Nullable(Dirs{}.ConfigSchema())
}

// configTypes are the static module's entries of core.Module.ConfigTypes.
var configTypes = map[string]any{
	"static":         Dirs{},
	"handler.static": handlerDirs{},
	"staticOptions":  Options{},
}
