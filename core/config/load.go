package config

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	yamlv3 "go.yaml.in/yaml/v3"
)

// Node is one value of a parsed document: map[string]any, []any, string, bool, a number
// (float64 or an integer type), or nil.
type Node = any

// Shape is the top-level form a configuration file takes.
type Shape int

const (
	// ShapeFull is {"global": {...}, "sites": [...]}.
	ShapeFull Shape = iota
	// ShapeSites is a bare array of site objects.
	ShapeSites
	// ShapeSingle is one site object.
	ShapeSingle
)

// String names the shape.
func (s Shape) String() string {
	switch s {
	case ShapeFull:
		return "full"
	case ShapeSites:
		return "sites"
	default:
		return "single"
	}
}

// Format is a file syntax.
type Format int

const (
	// FormatYAML is YAML 1.2 (a superset of JSON).
	FormatYAML Format = iota
	// FormatJSON is JSON.
	FormatJSON
)

// FormatOf guesses the format from a file name: .json is JSON, anything else YAML.
func FormatOf(path string) Format {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return FormatJSON
	}
	return FormatYAML
}

// Document is a parsed configuration before any module has looked at it.
type Document struct {
	// Path is the file it came from, if any.
	Path string
	// Shape is the top-level form the file used.
	Shape Shape
	// Global is the "global" block (only the Full shape has one).
	Global map[string]Node
	// Sites holds one raw map per site, in file order.
	Sites []map[string]Node
	// Substitutions records what $VAR substitution did (nil for a document built in
	// memory); Diagnostics.Track uses it.
	Substitutions *Substitutions
	// Files are the files a merged document was read from, in order (nil for one file).
	Files []string
	// Origins says which file each part of a merged document came from (nil for one file);
	// Diagnostics.TrackDocument uses it to name the file of each diagnostic.
	Origins *Origins
}

// SitePath returns the diagnostic path prefix of site i: "sites[i]" for the Full and Sites
// shapes, "" for the Single shape (whose keys sit at the top level).
func (d *Document) SitePath(i int) string {
	if d.Shape == ShapeSingle {
		return ""
	}
	return Index("sites", i)
}

// DiscoveryOrder lists the file names tried, in order, when no -c flag is given.
var DiscoveryOrder = []string{"conduit.json", "conduit.yaml", "conduit.yml"}

// Discover returns the first of DiscoveryOrder that exists in dir.
func Discover(dir string) (string, error) {
	for _, name := range DiscoveryOrder {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no config file found: tried %s in %s", strings.Join(DiscoveryOrder, ", "), dir)
}

// LoadFile reads and parses the file at path, then substitutes $VAR references in its
// scalars. lookup resolves them; pass os.LookupEnv for the process environment.
// The file is read by koanf's file provider.
func LoadFile(path string, lookup func(string) (string, bool)) (*Document, error) {
	doc, err := parseFrom(file.Provider(path), FormatOf(path), lookup)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	doc.Path = path
	return doc, nil
}

// Parse parses data in the given format, substitutes $VAR references in its string scalars
// (see Expand; the text itself is never changed, so a value cannot alter the structure) and
// sorts it into one of the three shapes. Errors quote the file, never a substituted value.
func Parse(data []byte, format Format, lookup func(string) (string, bool)) (*Document, error) {
	return parseFrom(rawbytes.Provider(data), format, lookup)
}

// parseFrom is Parse of the bytes p provides.
func parseFrom(p koanf.Provider, format Format, lookup func(string) (string, bool)) (*Document, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	subs := &Substitutions{}
	root, err := parseNode(p, format, lookup, subs)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, ErrEmptyConfig
	}
	doc, err := classify(root)
	if err != nil {
		return nil, err
	}
	doc.Substitutions = subs
	return doc, nil
}

// ErrEmptyConfig is the error for a config file with no content (empty, only whitespace or
// comments, or a bare null): most likely a truncated or wrong file, so it is not served as
// the empty catch-all site that `sites: []` asks for (docs/configuration.md, "No sites").
var ErrEmptyConfig = errors.New(`the config file is empty (no sites): write a site (e.g. "port: 8080"), or "sites: []" for the empty catch-all site on port 8080`)

// rootParser is a koanf.Parser that accepts any top-level value (koanf itself only loads
// objects) by placing it under a single key, and substitutes $VAR references after parsing.
type rootParser struct {
	format Format
	lookup func(string) (string, bool)
	subs   *Substitutions
}

const rootKey = "\x1eroot"

// Unmarshal implements koanf.Parser. Data that is only blanks is a nil root.
func (p rootParser) Unmarshal(b []byte) (map[string]any, error) {
	var v any
	if strings.TrimSpace(string(b)) == "" {
		return map[string]any{rootKey: nil}, nil
	}
	if p.format == FormatJSON {
		quoted := quoteBareReferences(b)
		if err := stdjson.Unmarshal(quoted, &v); err != nil {
			return nil, JSONSyntaxError(b, quoted, err)
		}
		var err error
		if v, err = p.subs.substituteTree(v, p.lookup); err != nil {
			return nil, err
		}
		return map[string]any{rootKey: v}, nil
	}
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(b, &n); err != nil {
		return nil, YAMLSyntaxError(b, err)
	}
	if err := p.subs.substituteYAML(&n, p.lookup); err != nil {
		return nil, err
	}
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return map[string]any{rootKey: v}, nil
}

// Marshal implements koanf.Parser.
func (p rootParser) Marshal(m map[string]any) ([]byte, error) {
	if p.format == FormatJSON {
		return stdjson.Marshal(m[rootKey])
	}
	return yamlv3.Marshal(m[rootKey])
}

// parseNode parses what p provides, substitutes references (recording them in subs) and returns the
// root node.
func parseNode(p koanf.Provider, format Format, lookup func(string) (string, bool), subs *Substitutions) (Node, error) {
	k := koanf.New(keyDelim)
	if err := k.Load(p, rootParser{format: format, lookup: lookup, subs: subs}); err != nil {
		var se *SyntaxError
		var pe *fs.PathError
		if errors.As(err, &se) {
			return nil, se
		}
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("parse error: %w", cleanParseError(err))
	}
	return normalize(k.Raw()[rootKey]), nil
}

func cleanParseError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// normalize converts koanf's map[string]interface{} trees (and YAML's map[any]any, if any)
// into map[string]Node and []Node.
func normalize(n Node) Node {
	switch v := n.(type) {
	case map[string]any:
		out := make(map[string]Node, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]Node, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		out := make([]Node, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	default:
		return v
	}
}

func classify(root Node) (*Document, error) {
	switch v := root.(type) {
	case map[string]Node:
		if sites, ok := v["sites"]; ok {
			list, ok := sites.([]Node)
			if !ok {
				return nil, errors.New("error at sites: must be an array of site objects")
			}
			doc := &Document{Shape: ShapeFull, Global: map[string]Node{}}
			if g, ok := v["global"]; ok && g != nil {
				gm, ok := g.(map[string]Node)
				if !ok {
					return nil, errors.New("error at global: must be an object")
				}
				doc.Global = gm
			}
			for i, s := range list {
				sm, ok := s.(map[string]Node)
				if !ok {
					return nil, fmt.Errorf("error at %s: must be a site object", Index("sites", i))
				}
				doc.Sites = append(doc.Sites, sm)
			}
			// Anything else at the top level of the Full shape is unknown.
			return doc, nil
		}
		return &Document{Shape: ShapeSingle, Global: map[string]Node{}, Sites: []map[string]Node{v}}, nil
	case []Node:
		doc := &Document{Shape: ShapeSites, Global: map[string]Node{}}
		for i, s := range v {
			sm, ok := s.(map[string]Node)
			if !ok {
				return nil, fmt.Errorf("error at %s: must be a site object", Index("sites", i))
			}
			doc.Sites = append(doc.Sites, sm)
		}
		return doc, nil
	default:
		return nil, errors.New("the top level must be an object (a site or {global, sites}) or an array of sites")
	}
}
