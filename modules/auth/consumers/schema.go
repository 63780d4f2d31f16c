package consumers

import (
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/modules/ratelimit"
)

// ConfigSchema implements config.SchemaProvider: sharedJwt as UnmarshalConfig decodes it
// (sharedFlat).
func (SharedJWT) ConfigSchema() map[string]any {
	return config.Schema(sharedFlat{})
}

// schemaConfig is the type of `consumers` for `conduit schema`: Config, with each consumer's
// rateLimit typed as the ratelimit module decodes it (null is none, as provision reads it).
type schemaConfig struct{}

// ConfigSchema implements config.SchemaProvider.
func (schemaConfig) ConfigSchema() map[string]any {
	s := config.Schema(Config{})
	consumer := s["properties"].(map[string]any)["consumers"].(map[string]any)["items"].(map[string]any)
	consumer["properties"].(map[string]any)["rateLimit"] = config.Nullable(config.Schema(ratelimit.Config{}))
	return s
}
