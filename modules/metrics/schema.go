package metrics

import "github.com/conduitproxy/conduit/core/config"

// options is the object shape of the key.
type options struct {
	Path  *string        `json:"path"`
	Token *config.Secret `json:"token"`
}

// ConfigSchema implements config.SchemaProvider: a boolean or the options object.
func (Config) ConfigSchema() map[string]any {
	return config.Toggle(config.Schema(options{}))
}
