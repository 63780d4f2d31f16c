package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Unmarshaler is implemented by types that decode themselves from a node, typically the
// untagged unions of the Conduit schema (`compression: true | {...}`, `proxy: "url" | {...}`).
// Problems are recorded in d at path; the method must not panic on any input.
type Unmarshaler interface {
	UnmarshalConfig(node Node, path string, d *Diagnostics)
}

// Decode decodes node into out (a non-nil pointer), recording every problem in d with the
// exact path of the offending value. Struct fields are matched by their `json` tag names.
//
// Rules, chosen so that existing Conduit files keep loading:
//   - an unknown key in an object is a warning that suggests the nearest known key;
//   - a wrong type or out-of-range number is an error;
//   - a field tagged `cfg:"required"` that is absent or null is an error;
//   - scalars decode into string fields as their text ("2" from 2), as YAML users expect.
func Decode(node Node, path string, out any, d *Diagnostics) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("config.Decode: out must be a non-nil pointer")
	}
	decodeValue(node, path, v.Elem(), d)
}

var unmarshalerType = reflect.TypeFor[Unmarshaler]()

// isScalarKind reports whether t is a plain bool, number or string (not an Unmarshaler).
func isScalarKind(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func decodeValue(node Node, path string, v reflect.Value, d *Diagnostics) {
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		v.Addr().Interface().(Unmarshaler).UnmarshalConfig(node, path, d)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if node == nil {
			v.SetZero()
			return
		}
		nv := reflect.New(v.Type().Elem())
		before := d.Len()
		decodeValue(node, path, nv.Elem(), d)
		if isScalarKind(v.Type().Elem()) && d.Len() > before {
			// A scalar that did not decode stays unset, so later checks of its value
			// (a range, a default) do not report the same mistake a second time.
			return
		}
		v.Set(nv)
	case reflect.Interface:
		if node != nil {
			v.Set(reflect.ValueOf(node))
		}
	case reflect.String:
		s, ok := scalarString(node)
		if !ok {
			d.Errorf(path, "must be a string, got %s", d.describe(node))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := node.(bool)
		if !ok {
			d.Errorf(path, "must be true or false, got %s", d.describe(node))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f, ok := number(node)
		if !ok || f != math.Trunc(f) {
			d.Errorf(path, "must be an integer, got %s", d.describe(node))
			return
		}
		lo, hi := intRange(v.Type())
		if f < lo || f > hi {
			d.Errorf(path, "must be between %.0f and %.0f, got %s", lo, hi, d.describe(node))
			return
		}
		v.SetInt(int64(f))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := number(node)
		if !ok || f != math.Trunc(f) {
			d.Errorf(path, "must be a non-negative integer, got %s", d.describe(node))
			return
		}
		if f < 0 {
			d.Errorf(path, "must be a non-negative integer, got %s", d.describe(node))
			return
		}
		if f > uintMax(v.Type()) {
			d.Errorf(path, "must be at most %d, got %s", uint64(1)<<v.Type().Bits()-1, d.describe(node))
			return
		}
		v.SetUint(uint64(f))
	case reflect.Float32, reflect.Float64:
		f, ok := number(node)
		if !ok {
			d.Errorf(path, "must be a number, got %s", d.describe(node))
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		list, ok := node.([]Node)
		if !ok {
			if node == nil {
				v.SetZero()
				return
			}
			d.Errorf(path, "must be an array, got %s", d.describe(node))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(list), len(list))
		for i, e := range list {
			decodeValue(e, Index(path, i), s.Index(i), d)
		}
		v.Set(s)
	case reflect.Map:
		m, ok := node.(map[string]Node)
		if !ok {
			if node == nil {
				v.SetZero()
				return
			}
			d.Errorf(path, "must be an object, got %s", d.describe(node))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic("config.Decode: map keys must be strings")
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(v.Type().Elem()).Elem()
			decodeValue(m[k], Join(path, k), ev, d)
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
		}
		v.Set(out)
	case reflect.Struct:
		m, ok := node.(map[string]Node)
		if !ok {
			d.Errorf(path, "must be an object, got %s", d.describe(node))
			return
		}
		decodeStruct(m, path, v, d)
	default:
		panic("config.Decode: unsupported kind " + v.Kind().String())
	}
}

// field describes one decodable struct field.
type field struct {
	name     string
	index    []int
	required bool
}

func structFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{name: name, index: sf.Index, required: sf.Tag.Get("cfg") == "required"})
	}
	return out
}

func decodeStruct(m map[string]Node, path string, v reflect.Value, d *Diagnostics) {
	fields := structFields(v.Type())
	known := make([]string, len(fields))
	for i, f := range fields {
		known[i] = f.name
		node, present := m[f.name]
		if !present {
			if f.required {
				d.Errorf(Join(path, f.name), "is required")
			}
			continue
		}
		if node == nil && f.required {
			// null would leave a required pointer nil, which the module then trusts.
			d.Errorf(Join(path, f.name), "is required (got null)")
			continue
		}
		decodeValue(node, Join(path, f.name), v.FieldByIndex(f.index), d)
	}
	for _, k := range sortedKeys(m) {
		if slices.Contains(known, k) {
			continue
		}
		UnknownKey(d, Join(path, k), k, known)
	}
}

// UnknownKey records the warning for a key nothing knows, with the nearest valid key if one
// is close.
func UnknownKey(d *Diagnostics, path, key string, known []string) {
	if s := Suggest(key, known); s != "" {
		d.Warnf(path, "unknown key %q (did you mean %q?); ignored", key, s)
		return
	}
	d.Warnf(path, "unknown key %q; ignored", key)
}

// KnownKeys returns the config key names of a struct type, for suggestions.
func KnownKeys(structPtr any) []string {
	t := reflect.TypeOf(structPtr)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for _, f := range structFields(t) {
		out = append(out, f.name)
	}
	return out
}

func sortedKeys(m map[string]Node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SortedKeys returns the keys of an object node in a stable order.
func SortedKeys(m map[string]Node) []string { return sortedKeys(m) }

func scalarString(n Node) (string, bool) {
	switch v := n.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	}
	return "", false
}

func number(n Node) (float64, bool) {
	switch v := n.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	}
	return 0, false
}

// Number returns the numeric value of a node, if it is a number.
func Number(n Node) (float64, bool) { return number(n) }

func intRange(t reflect.Type) (float64, float64) {
	bits := t.Bits()
	return -math.Pow(2, float64(bits-1)), math.Pow(2, float64(bits-1)) - 1
}

// uintMax is the largest float64 that fits the unsigned type (2^64-1 rounds up to 2^64 as a
// float, so the comparison is ">" against the power of two minus a half for 64 bits).
func uintMax(t reflect.Type) float64 {
	if t.Bits() == 64 {
		return math.Nextafter(math.Pow(2, 64), 0)
	}
	return math.Pow(2, float64(t.Bits())) - 1
}

// describe renders a node briefly for error messages, never echoing long or secret-looking
// values in full.
func describe(n Node) string {
	switch v := n.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 40 {
			return fmt.Sprintf("a string of %d characters", len(v))
		}
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case map[string]Node:
		return "an object"
	case []Node:
		return "an array"
	default:
		if f, ok := number(n); ok {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return fmt.Sprintf("%T", n)
	}
}

// Describe renders a node briefly for error messages.
func Describe(n Node) string { return describe(n) }

// DecodeToggle decodes a key that is either a boolean or an object, the shape of most
// feature switches (`cors: true`, `cors: {origins: […]}`): a boolean sets *enabled; an
// object sets *enabled to true and is decoded into obj. It returns true when obj was
// decoded. Anything else is an error "must be <want>, got <kind>" at path.
func DecodeToggle(n Node, path string, d *Diagnostics, want string, enabled *bool, obj any) bool {
	switch v := n.(type) {
	case bool:
		*enabled = v
	case map[string]Node:
		*enabled = true
		Decode(v, path, obj, d)
		return true
	default:
		d.Errorf(path, "must be %s, got %s", want, Describe(n))
	}
	return false
}
