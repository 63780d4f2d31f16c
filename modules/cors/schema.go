package cors

import "github.com/conduitproxy/conduit/core/config"

// ConfigSchema implements config.SchemaProvider: a boolean or the object UnmarshalConfig decodes.
func (Config) ConfigSchema() map[string]any {
	return config.Toggle(config.Schema(object{}))
}
