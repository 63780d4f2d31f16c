package acme

import "github.com/conduitproxy/conduit/core/config"

// schemaConfig is the type of `tls.acme` for `conduit schema`: Config, or null, which
// provision reads as no acme.
type schemaConfig struct{}

// ConfigSchema implements config.SchemaProvider.
func (schemaConfig) ConfigSchema() map[string]any {
	return config.Nullable(config.Schema(Config{}))
}
