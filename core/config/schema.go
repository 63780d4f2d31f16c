package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

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
// about them), any scalar accepted for a string (Decode takes its text), integers of 32 bits
// or fewer within their range, null accepted for a pointer that is not required (Decode leaves
// it nil) and for a slice or a map. A type that implements SchemaProvider describes itself; an
// Unmarshaler that does not is accepted in any shape (its own checks run when the config
// loads).
//
// Struct fields may document themselves with tags (FieldDoc says what each becomes):
// `doc:"text"` (the description), `default:"JSON"` (the default, a JSON literal or else a
// string), `minimum:"1"` and `maximum:"10"` (bounds the module enforces with an error) and
// `enum:"a|b|c"` (the only strings the module accepts; a leading "|" admits "", and
// `enumcase:"fold"` says the module compares them without regard to case).
func Schema(v any) map[string]any {
	t := reflect.TypeOf(v)
	if t == nil {
		return map[string]any{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return schemaOf(t, map[reflect.Type]bool{})
}

func schemaOf(t reflect.Type, seen map[reflect.Type]bool) map[string]any {
	if t.Kind() == reflect.Pointer {
		// Decode leaves a pointer nil for null.
		return Nullable(schemaOf(t.Elem(), seen))
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
		if t.Bits() <= 32 {
			lo, hi := intRange(t)
			return map[string]any{"type": "integer", "minimum": int64(lo), "maximum": int64(hi)}
		}
		// A 64-bit bound is not exact as a float64, which Decode compares with: left out.
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t.Bits() <= 32 {
			return map[string]any{"type": "integer", "minimum": 0, "maximum": int64(uintMax(t))}
		}
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
			sf := t.FieldByIndex(f.index)
			ft := sf.Type
			if f.required {
				// Decode refuses null for a required key, pointer or not.
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
			}
			fs := schemaOf(ft, seen)
			if f.required {
				fs = nonNull(fs)
			}
			props[f.name] = Annotate(fs, FieldDoc{
				Description: sf.Tag.Get("doc"), Default: tagJSON(sf.Tag, "default"), Enum: tagEnum(sf.Tag),
				FoldCase: sf.Tag.Get("enumcase") == "fold",
				Minimum:  tagJSON(sf.Tag, "minimum"), Maximum: tagJSON(sf.Tag, "maximum"),
			})
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

// FieldDoc is what a struct field's tags, or a module's schema code, add to the schema of one
// value.
type FieldDoc struct {
	// Description becomes "description" (tag `doc`).
	Description string
	// Default becomes "default" (tag `default`, a JSON literal, or else a string).
	Default any
	// Enum lists the only strings accepted (tag `enum`, "|"-separated): the value's type
	// becomes "string" (a number's text is none of them) and its values "enum".
	Enum []string
	// FoldCase says the module compares Enum without regard to case (tag
	// `enumcase:"fold"`): the values become a case-insensitive "pattern" and "examples".
	FoldCase bool
	// Minimum and Maximum bound a number (tags `minimum`, `maximum`): only for bounds the
	// module enforces with an error, so the schema stays never stricter than validate.
	Minimum, Maximum any
}

// Annotate adds doc to the schema s (a value's) and returns s.
func Annotate(s map[string]any, doc FieldDoc) map[string]any {
	if doc.Description != "" {
		s["description"] = doc.Description
	}
	if doc.Default != nil {
		s["default"] = doc.Default
	}
	if doc.Minimum != nil {
		s["minimum"] = doc.Minimum
	}
	if doc.Maximum != nil {
		s["maximum"] = doc.Maximum
	}
	if doc.Enum == nil {
		return s
	}
	null := admitsNull(s)
	s["type"] = "string"
	values := make([]any, len(doc.Enum))
	for i, v := range doc.Enum {
		values[i] = v
	}
	if null {
		// A nullable value (a pointer) keeps null besides its strings.
		s["type"] = []any{"string", "null"}
	}
	if !doc.FoldCase {
		if null {
			values = append(values, nil)
		}
		s["enum"] = values
		return s
	}
	alts := make([]string, len(doc.Enum))
	for i, v := range doc.Enum {
		alts[i] = foldPattern(v)
	}
	s["pattern"] = "^(?:" + strings.Join(alts, "|") + ")$"
	s["examples"] = values
	return s
}

// AnnotateProperties adds docs to the properties of an object schema s, by property name,
// and returns s. A name s has no property for is a programming error: it panics, so a doc
// that outlives its field fails `conduit schema` and the schema tests.
func AnnotateProperties(s map[string]any, docs map[string]FieldDoc) map[string]any {
	props, _ := s["properties"].(map[string]any)
	for name, doc := range docs {
		p, ok := props[name].(map[string]any)
		if !ok {
			panic("config.AnnotateProperties: no property " + name)
		}
		Annotate(p, doc)
	}
	return s
}

// Nullable returns s admitting null too, for a value Decode leaves unset on null (a pointer,
// a slice, a map, or a key a module skips when it is null).
func Nullable(s map[string]any) map[string]any {
	switch t := s["type"].(type) {
	case string:
		if t != "null" {
			s["type"] = []any{t, "null"}
		}
		addNullToEnum(s)
		return s
	case []any:
		for _, e := range t {
			if e == "null" {
				return s
			}
		}
		s["type"] = append(t, "null")
		addNullToEnum(s)
		return s
	}
	if isOpen(s) {
		return s
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// nonNull returns s without null in its type (a slice or a map that is required).
func nonNull(s map[string]any) map[string]any {
	t, ok := s["type"].([]any)
	if !ok {
		return s
	}
	var kept []any
	for _, e := range t {
		if e != "null" {
			kept = append(kept, e)
		}
	}
	if len(kept) == 1 {
		s["type"] = kept[0]
	} else {
		s["type"] = kept
	}
	return s
}

// addNullToEnum adds null to the enumeration of s, if it has one.
func addNullToEnum(s map[string]any) {
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = append(e, nil)
	}
}

// admitsNull reports whether the type of s includes null.
func admitsNull(s map[string]any) bool {
	t, _ := s["type"].([]any)
	for _, e := range t {
		if e == "null" {
			return true
		}
	}
	return false
}

// isOpen reports whether s constrains nothing (only annotations).
func isOpen(s map[string]any) bool {
	for k := range s {
		switch k {
		case "description", "default", "examples", "title":
		default:
			return false
		}
	}
	return true
}

// Toggle returns the schema of a key that is a boolean or an object (DecodeToggle's shapes),
// with obj the schema of the object.
func Toggle(obj map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{map[string]any{"type": "boolean"}, obj}}
}

// Closed marks the object schema s as admitting no other property than its own, for a
// module that refuses unknown keys (an error, not Decode's warning), and returns s.
func Closed(s map[string]any) map[string]any {
	s["additionalProperties"] = false
	return s
}

// tagJSON returns the value of the tag key as a JSON literal, or as a string when it is not
// one; nil when the tag is absent.
func tagJSON(tag reflect.StructTag, key string) any {
	text, ok := tag.Lookup(key)
	if !ok {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return text
	}
	return v
}

func tagEnum(tag reflect.StructTag) []string {
	text, ok := tag.Lookup("enum")
	if !ok {
		return nil
	}
	return strings.Split(text, "|")
}

// foldPattern returns a regular expression (ECMA-262 and RE2 alike) matching s in any case:
// each ASCII letter becomes a class of its two cases, other ASCII characters but digits are
// hex escapes.
func foldPattern(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			lo, up := strings.ToLower(string(r)), strings.ToUpper(string(r))
			b.WriteString("[" + lo + up + "]")
		case r >= '0' && r <= '9', r > 0x7f:
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "\\x%02x", r)
		}
	}
	return b.String()
}
