package jwtverify

import "github.com/conduitproxy/conduit/core/config"

// ConfigSchema implements config.SchemaProvider: one string, or a list decoded as a []string
// (whose items Decode also takes from a number's or a boolean's text; null is an empty
// list), as UnmarshalConfig decodes it.
func (StringList) ConfigSchema() map[string]any {
	return map[string]any{
		"description": "one string or a list of strings",
		"anyOf": []any{
			map[string]any{"type": "string"},
			config.Schema([]string{}),
			map[string]any{"type": "null"},
		},
	}
}
