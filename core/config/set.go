package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Assignment is one override of a single key of a configuration, written PATH=VALUE (the
// --set flag, CONDUIT_SET_* variables; docs/configuration.md, "Overriding one key"):
//
//   - PATH starts with "global" or "sites[N]" (N counts from 0 over the sites of every file,
//     whatever the shape of the file; N equal to the number of sites adds a site) and goes on
//     with ".key" for an object's key and "[N]" for an array's element. A key that holds a
//     dot, a bracket or "=" is written as a JSON string in brackets: proxy["/v1.2"].
//   - VALUE is read as YAML: 8081 is a number, true a boolean, 127.0.0.1:9901 or a URL a
//     string, '8081' (quoted) the string "8081", [a, b] an array, {a: 1} an object, and
//     nothing at all is null. $VAR references are not substituted.
//
// An Assignment may instead remove a key (Unset; the --unset flag, CONDUIT_UNSET_*
// variables), written PATH alone: see ParseUnset. Setting a key to null (PATH=) keeps the key,
// with the value null.
type Assignment struct {
	// Path is the path as written; Value the value read from VALUE.
	Path  string
	Value Node
	// Source names where the assignment came from ("--set", "CONDUIT_SET_ADMIN"); the
	// diagnostics of the key name it as their file.
	Source string
	// FromEnvironment marks a value taken from the environment: diagnostics never print it.
	FromEnvironment bool
	// Unset removes the key Path names instead of setting it (Value is unused).
	Unset bool
	segs  []segment
}

// segment is one step of an assignment's path: a key, or an index when isIndex.
type segment struct {
	key     string
	index   int
	isIndex bool
}

// ParseAssignment reads "PATH=VALUE" (see Assignment); source names where it was written.
func ParseAssignment(s, source string) (Assignment, error) {
	segs, rest, err := parseSetPath(s)
	if err != nil {
		return Assignment{}, fmt.Errorf("%s %q: %w", source, s, err)
	}
	if !strings.HasPrefix(rest, "=") {
		return Assignment{}, fmt.Errorf("%s %q: want PATH=VALUE, e.g. global.admin.bind=127.0.0.1:9901 or sites[0].port=8081", source, s)
	}
	text := rest[1:]
	var v any
	if err := yamlv3.Unmarshal([]byte(text), &v); err != nil {
		return Assignment{}, fmt.Errorf("%s %s: the value is not YAML: %v", source, s[:len(s)-len(rest)], cleanParseError(err))
	}
	return Assignment{Path: s[:len(s)-len(rest)], Value: normalize(v), Source: source, segs: segs}, nil
}

// ParseUnset reads the PATH of an --unset (see Assignment for the syntax): the key of an
// object to remove, such as global.otlp or sites[0].proxy["/v1.2"].retry. The last step is a
// key, not an index: an array element or a whole site is not removed (set the array whole
// instead), since removing one would renumber the elements after it. source names where it
// was written.
func ParseUnset(s, source string) (Assignment, error) {
	segs, rest, err := parseSetPath(s)
	if err == nil && rest != "" {
		err = errors.New("want PATH alone (no =VALUE), e.g. global.otlp or sites[0].rateLimit")
	}
	if err == nil && segs[len(segs)-1].isIndex {
		err = errors.New("an --unset path ends with a key, not an index: an array element or a site is not removed (set the whole array instead)")
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("%s %q: %w", source, s, err)
	}
	return Assignment{Path: s, Source: source, Unset: true, segs: segs}, nil
}

// parseSetPath reads the path at the start of s and returns its segments and the rest of s
// (from the "=").
func parseSetPath(s string) (segs []segment, rest string, err error) {
	switch {
	case strings.HasPrefix(s, "global"):
		segs, rest = []segment{{key: "global"}}, s[len("global"):]
	case strings.HasPrefix(s, "sites["):
		segs, rest = []segment{{key: "sites"}}, s[len("sites"):]
	default:
		return nil, s, errors.New(`the path starts with "global" or "sites[N]"`)
	}
	for rest != "" && rest[0] != '=' {
		switch rest[0] {
		case '.':
			end := strings.IndexAny(rest[1:], ".[]=\"")
			if end < 0 {
				end = len(rest) - 1
			}
			key := rest[1 : 1+end]
			if key == "" {
				return nil, rest, errors.New("an empty key in the path (write a key with dots as [\"a.b\"])")
			}
			segs, rest = append(segs, segment{key: key}), rest[1+end:]
		case '[':
			if strings.HasPrefix(rest, `["`) {
				key, n, err := quotedKey(rest[1:])
				if err != nil {
					return nil, rest, err
				}
				if !strings.HasPrefix(rest[1+n:], "]") {
					return nil, rest, errors.New(`a quoted key is closed by "]"`)
				}
				segs, rest = append(segs, segment{key: key}), rest[2+n:]
				continue
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, rest, errors.New(`"[" without "]"`)
			}
			i, err := strconv.Atoi(rest[1:end])
			if err != nil || i < 0 || rest[1] == '+' || rest[1] == '-' {
				return nil, rest, fmt.Errorf("[%s] is not an index (0, 1, …); write a key as [\"key\"]", rest[1:end])
			}
			segs, rest = append(segs, segment{index: i, isIndex: true}), rest[end+1:]
		default:
			return nil, rest, fmt.Errorf("unexpected %q in the path", rest[0])
		}
	}
	if segs[0].key == "sites" && (len(segs) < 2 || !segs[1].isIndex) {
		return nil, rest, errors.New("sites is followed by an index: sites[0]")
	}
	if segs[0].key == "global" && len(segs) < 2 {
		return nil, rest, errors.New("global is followed by a key: global.admin.bind")
	}
	return segs, rest, nil
}

// quotedKey reads the JSON string at the start of s and returns it and its length in s.
func quotedKey(s string) (string, int, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			key, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", 0, fmt.Errorf("bad quoted key %s: %w", s[:i+1], err)
			}
			return key, i + 1, nil
		}
	}
	return "", 0, errors.New("a quoted key without its closing quote")
}

// EnvAssignments reads the assignments of the CONDUIT_SET and CONDUIT_SET_* variables of
// environ ("NAME=value" entries, as os.Environ returns them), then the removals of the
// CONDUIT_UNSET and CONDUIT_UNSET_* variables, each in the order of their names:
// CONDUIT_SET_ADMIN='global.admin.bind=0.0.0.0:2019', CONDUIT_UNSET_OTLP='global.otlp'.
func EnvAssignments(environ []string) ([]Assignment, error) {
	type kv struct{ name, value string }
	var vars []kv
	for _, e := range environ {
		name, value, _ := strings.Cut(e, "=")
		if isOverrideVar(name, "CONDUIT_SET") || isOverrideVar(name, "CONDUIT_UNSET") {
			vars = append(vars, kv{name, value})
		}
	}
	// By name, every CONDUIT_SET* sorts before every CONDUIT_UNSET*.
	sort.Slice(vars, func(i, j int) bool { return vars[i].name < vars[j].name })
	out := make([]Assignment, 0, len(vars))
	for _, v := range vars {
		parse := ParseAssignment
		if isOverrideVar(v.name, "CONDUIT_UNSET") {
			parse = ParseUnset
		}
		a, err := parse(v.value, v.name)
		if err != nil {
			return nil, err
		}
		a.FromEnvironment = true
		out = append(out, a)
	}
	return out, nil
}

// isOverrideVar reports whether the variable name is prefix or prefix_*.
func isOverrideVar(name, prefix string) bool {
	return name == prefix || strings.HasPrefix(name, prefix+"_")
}

// Apply sets the key a names in doc to a's value, creating the objects on its way. An index
// must name an element that exists or the one just past the end (which it adds). The
// diagnostics of the key and of everything under it then name a.Source as their file. An
// Unset assignment removes the key instead; a key that is not there is an error naming it.
func (doc *Document) Apply(a Assignment) error {
	if len(a.segs) < 2 {
		return fmt.Errorf("%s: empty assignment", a.Source)
	}
	if a.Unset {
		return doc.unset(a)
	}
	var path string
	var err error
	v := normalize(a.Value) // a copy: the assignment is applied to each load
	if a.segs[0].key == "global" {
		if doc.Global == nil {
			doc.Global = map[string]Node{}
		}
		_, path, err = put(doc.Global, "global", a.segs[1:], v)
	} else {
		i := a.segs[1].index
		if i > len(doc.Sites) {
			return fmt.Errorf("%s %s: there is no site %d (the config has %d sites)", a.Source, a.Path, i, len(doc.Sites))
		}
		if i == len(doc.Sites) {
			doc.Sites = append(doc.Sites, map[string]Node{})
			if doc.Shape == ShapeSingle {
				doc.Shape = ShapeSites
			}
		}
		var site Node
		site, path, err = put(doc.Sites[i], doc.SitePath(i), a.segs[2:], v)
		if m, ok := site.(map[string]Node); ok && err == nil {
			doc.Sites[i] = m
		} else if err == nil {
			err = errors.New("a site is an object")
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", a.Source, a.Path, err)
	}
	doc.noteOverride(path, a)
	return nil
}

// unset removes the key a names (a.Unset).
func (doc *Document) unset(a Assignment) error {
	var cur Node
	var path string
	segs := a.segs[1:]
	if a.segs[0].key == "global" {
		cur, path = doc.Global, "global"
	} else {
		i := a.segs[1].index
		if i >= len(doc.Sites) {
			return fmt.Errorf("%s %s: there is no site %d (the config has %d sites)", a.Source, a.Path, i, len(doc.Sites))
		}
		cur, path, segs = doc.Sites[i], doc.SitePath(i), a.segs[2:]
	}
	if err := remove(cur, path, segs); err != nil {
		return fmt.Errorf("%s %s: %w", a.Source, a.Path, err)
	}
	return nil
}

// remove deletes the key segs names under cur (at path); segs is not empty and ends with a
// key (ParseUnset).
func remove(cur Node, path string, segs []segment) error {
	s := segs[0]
	switch c := cur.(type) {
	case map[string]Node:
		if s.isIndex {
			return fmt.Errorf("%s is an object: write .key, not [%d]", describePath(path), s.index)
		}
		next, ok := c[s.key]
		if !ok {
			return fmt.Errorf("%s has no key %q: nothing to unset", describePath(path), s.key)
		}
		if len(segs) == 1 {
			delete(c, s.key)
			return nil
		}
		return remove(next, Join(path, s.key), segs[1:])
	case []Node:
		if !s.isIndex {
			return fmt.Errorf("%s is an array: write [N], not .%s", path, s.key)
		}
		if s.index >= len(c) {
			return fmt.Errorf("%s has %d elements: there is no [%d] to unset from", path, len(c), s.index)
		}
		return remove(c[s.index], Index(path, s.index), segs[1:])
	case nil:
		return fmt.Errorf("%s does not exist (or is null): nothing to unset", describePath(path))
	default:
		return fmt.Errorf("%s is %s, not an object or array", describePath(path), kindOf(c))
	}
}

// put sets the element segs names under cur (at path) to v and returns the new cur and the
// element's path.
func put(cur Node, path string, segs []segment, v Node) (Node, string, error) {
	if len(segs) == 0 {
		return v, path, nil
	}
	s := segs[0]
	switch c := cur.(type) {
	case nil:
		if s.isIndex {
			return nil, path, fmt.Errorf("%s does not exist, so it has no element [%d]", path, s.index)
		}
		return put(map[string]Node{}, path, segs, v)
	case map[string]Node:
		if s.isIndex {
			return nil, path, fmt.Errorf("%s is an object: write .key, not [%d]", describePath(path), s.index)
		}
		nv, p, err := put(c[s.key], Join(path, s.key), segs[1:], v)
		if err != nil {
			return nil, p, err
		}
		c[s.key] = nv
		return c, p, nil
	case []Node:
		if !s.isIndex {
			return nil, path, fmt.Errorf("%s is an array: write [N], not .%s", path, s.key)
		}
		if s.index > len(c) {
			return nil, path, fmt.Errorf("%s has %d elements; [%d] is past its end", path, len(c), s.index)
		}
		if s.index == len(c) {
			c = append(c, nil)
		}
		nv, p, err := put(c[s.index], Index(path, s.index), segs[1:], v)
		if err != nil {
			return nil, p, err
		}
		c[s.index] = nv
		return c, p, nil
	default:
		return nil, path, fmt.Errorf("%s is %s, not an object or array", describePath(path), kindOf(c))
	}
}

// describePath is path, or "the site" for the top of a single-site file.
func describePath(path string) string {
	if path == "" {
		return "the site"
	}
	return path
}

// noteOverride records that path was set by a, so diagnostics about it name a.Source, and
// keeps a value from the environment out of messages.
func (doc *Document) noteOverride(path string, a Assignment) {
	if doc.Origins == nil {
		doc.Origins = &Origins{owners: map[string]string{}}
	}
	doc.Origins.overrides = append(doc.Origins.overrides, override{path: path, source: a.Source})
	if !a.FromEnvironment {
		return
	}
	if doc.Substitutions == nil {
		doc.Substitutions = &Substitutions{}
	}
	doc.Substitutions.fromEnv(a.Value)
}

// fromEnv records every string in v as a value from the environment.
func (s *Substitutions) fromEnv(v Node) {
	switch x := v.(type) {
	case string:
		if s.values == nil {
			s.values, s.strings = map[string]bool{}, map[string]bool{}
		}
		s.values[x], s.strings[x] = true, true
	case map[string]Node:
		for _, e := range x {
			s.fromEnv(e)
		}
	case []Node:
		for _, e := range x {
			s.fromEnv(e)
		}
	}
}

// override is one key an Assignment set.
type override struct {
	path, source string
}

// kindOf names the type of a scalar without its value (which may come from the
// environment).
func kindOf(n Node) string {
	switch n.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}
