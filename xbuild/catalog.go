package xbuild

import (
	"fmt"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// Bundles lists the bundle names, smallest first. Each bundle contains the one before it.
var Bundles = []string{"minimal", "standard", "full"}

// bundleDir is where a bundle's package lives inside the core module.
func bundleDir(bundle string) string { return filepath.Join("modules", "bundle", bundle) }

// BundlePackage returns the import path of a bundle package of the core module coreModule.
func BundlePackage(coreModule, bundle string) string {
	return coreModule + "/modules/bundle/" + bundle
}

// Feature is one optional feature as a bundle declares it: a file maybe_<Name>.go in the
// bundle's package holding one blank import behind `//go:build !conduit_omit_<Name>`.
type Feature struct {
	// Name is the feature name (what --features takes).
	Name string
	// Bundle is the smallest bundle that contains the feature.
	Bundle string
	// Package is the import path the bundle file imports.
	Package string
	// File is the bundle file the feature was read from, relative to the core module root.
	File string
	// Aliases are other names --features accepts for the feature (the original Conduit's
	// feature names, such as "rhai" for "script"), from the file's `//conduit:alias NAME`
	// lines.
	Aliases []string
}

// FeatureSet is every feature the bundles of one core source tree declare, read from the
// maybe_*.go files, so the feature list is never maintained twice.
type FeatureSet struct {
	byName  map[string]Feature
	aliases map[string]string // alias → feature name
}

// Lookup returns the feature called name, or the feature name is an alias of.
func (s *FeatureSet) Lookup(name string) (Feature, bool) {
	if canonical, ok := s.aliases[name]; ok {
		name = canonical
	}
	f, ok := s.byName[name]
	return f, ok
}

// All returns every feature, sorted by bundle (smallest first) and then by name.
func (s *FeatureSet) All() []Feature {
	out := make([]Feature, 0, len(s.byName))
	for _, f := range s.byName {
		out = append(out, f)
	}
	rank := func(b string) int {
		for i, x := range Bundles {
			if x == b {
				return i
			}
		}
		return len(Bundles)
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i].Bundle), rank(out[j].Bundle); ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Names returns the sorted feature names.
func (s *FeatureSet) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// UnknownFeatureError reports a --features name that no bundle declares.
type UnknownFeatureError struct {
	// Name is the name that was asked for.
	Name string
	// Suggestion is the nearest known name, or "".
	Suggestion string
	// Known lists every known feature name.
	Known []string
}

// Error implements error.
func (e *UnknownFeatureError) Error() string {
	msg := fmt.Sprintf("unknown feature %q", e.Name)
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	if len(e.Known) == 0 {
		return msg + "; the core's bundles declare no optional features yet"
	}
	return msg + "; known features: " + strings.Join(e.Known, ", ")
}

// Resolve maps feature names to their features, failing on the first unknown one with a
// suggestion.
func (s *FeatureSet) Resolve(names []string) ([]Feature, error) {
	var out []Feature
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		f, ok := s.Lookup(n)
		if !ok {
			known := s.Names()
			return nil, &UnknownFeatureError{Name: n, Suggestion: config.Suggest(n, known), Known: known}
		}
		out = append(out, f)
	}
	return out, nil
}

// LoadFeatures reads the bundle packages under coreDir (a checkout or module-cache copy of
// the core module) and returns the features they declare. It checks the bundle convention:
// every maybe_<name>.go holds exactly one blank import and the build constraint
// `!conduit_omit_<name>`, and no feature appears in two bundles.
func LoadFeatures(coreDir string) (*FeatureSet, error) {
	set := &FeatureSet{byName: map[string]Feature{}, aliases: map[string]string{}}
	for _, b := range Bundles {
		dir := filepath.Join(coreDir, bundleDir(b))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read bundle %s: %w", b, err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasPrefix(name, "maybe_") || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			feature := strings.TrimSuffix(strings.TrimPrefix(name, "maybe_"), ".go")
			// A feature named like a GOARCH or GOOS (wasm) cannot use maybe_<name>.go: Go
			// would build that file only for that target. maybe_<name>_feature.go works.
			feature = strings.TrimSuffix(feature, "_feature")
			rel := filepath.ToSlash(filepath.Join(bundleDir(b), name))
			pkg, aliases, err := parseMaybeFile(filepath.Join(dir, name), feature)
			if err != nil {
				return nil, fmt.Errorf("bundle file %s: %w", rel, err)
			}
			if prev, dup := set.byName[feature]; dup {
				return nil, fmt.Errorf("feature %q is declared twice: %s and %s", feature, prev.File, rel)
			}
			set.byName[feature] = Feature{Name: feature, Bundle: b, Package: pkg, File: rel, Aliases: aliases}
			for _, a := range aliases {
				if prev, dup := set.aliases[a]; dup {
					return nil, fmt.Errorf("alias %q names both %q and %q (%s)", a, prev, feature, rel)
				}
				set.aliases[a] = feature
			}
		}
	}
	for a, f := range set.aliases {
		if _, clash := set.byName[a]; clash {
			return nil, fmt.Errorf("alias %q of feature %q is itself a feature", a, f)
		}
	}
	return set, nil
}

// aliasDirective starts a bundle file comment line that names another name of the feature.
const aliasDirective = "//conduit:alias "

// parseMaybeFile returns the single blank import of a maybe_<feature>.go file and the
// aliases its `//conduit:alias NAME` lines declare, and checks its build constraint.
func parseMaybeFile(path, feature string) (pkg string, aliases []string, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return "", nil, fmt.Errorf("parse: %w", err)
	}
	var expr constraint.Expr
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			switch {
			case cg.Pos() < f.Package && constraint.IsGoBuild(c.Text):
				if expr, err = constraint.Parse(c.Text); err != nil {
					return "", nil, fmt.Errorf("build constraint: %w", err)
				}
			case strings.HasPrefix(c.Text, aliasDirective):
				a := strings.TrimSpace(strings.TrimPrefix(c.Text, aliasDirective))
				if a == "" || strings.ContainsAny(a, " \t,") || a == feature {
					return "", nil, fmt.Errorf("bad alias line %q: want one name other than %q", c.Text, feature)
				}
				aliases = append(aliases, a)
			}
		}
	}
	tag := "conduit_omit_" + feature
	if expr == nil || expr.String() != "!"+tag {
		return "", nil, fmt.Errorf("needs the build constraint `//go:build !%s`", tag)
	}
	if len(f.Imports) != 1 || f.Imports[0].Name == nil || f.Imports[0].Name.Name != "_" {
		return "", nil, fmt.Errorf("must hold exactly one blank import")
	}
	pkg, err = strconv.Unquote(f.Imports[0].Path.Value)
	if err != nil {
		return "", nil, fmt.Errorf("import path: %w", err)
	}
	return pkg, aliases, nil
}
