package fallback

import "github.com/conduitproxy/conduit/core/config"

// configSchema describes the `fallback` key for `conduit schema`: Config, or null (which
// provision reads as {}).
type configSchema struct{}

// ConfigSchema implements config.SchemaProvider.
func (configSchema) ConfigSchema() map[string]any {
	s := config.Schema(Config{})
	s["type"] = []any{"object", "null"}
	return s
}
