package accesslog

import (
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// options is the object shape of the key.
type options struct {
	Format     *string  `json:"format"`
	File       *string  `json:"file"`
	SkipPaths  []string `json:"skipPaths"`
	StripQuery bool     `json:"stripQuery"`
}

// ConfigSchema implements config.SchemaProvider: a boolean, a format name or the options object.
func (Config) ConfigSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "boolean"},
		map[string]any{"type": "string", "description": "a format: " + strings.Join(formatList, ", ")},
		config.Schema(options{}),
	}}
}
