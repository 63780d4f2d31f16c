package config

import "reflect"

// SchemaProvider is implemented by a config type whose accepted shapes a struct cannot
// describe, typically an Unmarshaler for a union (`responseTime: true | {digits: 2}`): it
// returns the JSON Schema of every shape its UnmarshalConfig accepts.
type SchemaProvider interface {
	ConfigSchema() map[string]any
}

var schemaProviderType = reflect.TypeFor[SchemaProvider]()

// Schema returns a JSON Schema (2020-12 vocabulary) of what Decode accepts into a value of
// v's type (v may be a pointer). It follows Decode's rules, never stricter: struct fields by
// their `json` names, `cfg:"required"` fields required, unknown keys allowed (Decode warns
// about them), any scalar accepted for a string (Decode takes its text). A type that
// implements SchemaProvider describes itself; an Unmarshaler that does not is accepted in
// any shape (its own checks run when the config loads).
func Schema(v any) map[string]any {
	t := reflect.TypeOf(v)
	if t == nil {
		return map[string]any{}
	}
	return schemaOf(t, map[reflect.Type]bool{})
}

func schemaOf(t reflect.Type, seen map[reflect.Type]bool) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(schemaProviderType) {
		return reflect.Zero(t).Interface().(SchemaProvider).ConfigSchema()
	}
	if reflect.PointerTo(t).Implements(schemaProviderType) {
		return reflect.New(t).Interface().(SchemaProvider).ConfigSchema()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		// Decode takes a number's or a boolean's text for a string.
		return map[string]any{"type": []any{"string", "number", "boolean"}}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		// Decode leaves a slice empty for null.
		return map[string]any{"type": []any{"array", "null"}, "items": schemaOf(t.Elem(), seen)}
	case reflect.Map:
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": schemaOf(t.Elem(), seen)}
	case reflect.Struct:
		if seen[t] {
			return map[string]any{"type": "object"}
		}
		seen[t] = true
		defer delete(seen, t)
		props := map[string]any{}
		var required []any
		for _, f := range structFields(t) {
			props[f.name] = schemaOf(t.FieldByIndex(f.index).Type, seen)
			if f.required {
				required = append(required, f.name)
			}
		}
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

// ConfigSchema implements SchemaProvider: a number of seconds or a duration text.
func (Humantime) ConfigSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "number", "minimum": 0},
		map[string]any{"type": "string", "description": "a duration: 30s, 5m, 12h, 7d, 1y"},
	}}
}

// ConfigSchema implements SchemaProvider: a secret is a string.
func (Secret) ConfigSchema() map[string]any {
	return map[string]any{"type": []any{"string", "number", "boolean"}, "description": "a secret; $NAME reads it from the environment"}
}
