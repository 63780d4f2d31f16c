package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/knadh/koanf/v2"
)

// ConfigExtensions are the file name endings a config directory's files are read by
// (compared without regard to case).
var ConfigExtensions = []string{".yaml", ".yml", ".json"}

// ExpandPaths turns the config paths of a command line (-c given once or more) into the
// files to read, in order: a file as given, a directory as its *.yaml, *.yml and *.json files
// (not its subdirectories; names starting with "." skipped; symbolic links followed) in byte
// order of their names. A directory without such files, or a file named twice, is an error.
func ExpandPaths(paths []string) ([]string, error) {
	var files []string
	seen := map[string]string{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		list := []string{p}
		if st.IsDir() {
			if list, err = dirFiles(p); err != nil {
				return nil, err
			}
		}
		for _, f := range list {
			abs, err := filepath.Abs(f)
			if err != nil {
				abs = filepath.Clean(f)
			}
			if prev, dup := seen[abs]; dup {
				return nil, fmt.Errorf("config file %s is given twice (also as %s)", f, prev)
			}
			seen[abs] = f
			files = append(files, f)
		}
	}
	return files, nil
}

// dirFiles lists the config files of dir in name order.
func dirFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read config directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !IsConfigFileName(name) {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p) // follows a symbolic link (a Kubernetes ConfigMap's files are links)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if st.IsDir() {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("config directory %s holds no %s file", dir, strings.Join(ConfigExtensions, ", "))
	}
	return out, nil
}

// IsConfigFileName reports whether a config directory's entry called name is read: not
// hidden (no leading "."), and ending in one of ConfigExtensions.
func IsConfigFileName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range ConfigExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// LoadFiles reads the config files and directories paths names (see ExpandPaths) and merges
// them into one document: the sites of every file in order, and the global blocks key by
// key. A key set by two files (at any depth of global; arrays are values) is an error naming
// both files and the key. One file is loaded exactly as LoadFile loads it. Each file is
// parsed, $VAR-substituted and sorted into its shape on its own, and every error names the
// file. The merged document's diagnostics name the file and the path within it (Origins).
func LoadFiles(paths []string, lookup func(string) (string, bool)) (*Document, error) {
	files, err := ExpandPaths(paths)
	if err != nil {
		return nil, err
	}
	if len(files) == 1 {
		return LoadFile(files[0], lookup)
	}
	var parts []*Document
	var errs []error
	for _, f := range files {
		doc, err := LoadFile(f, lookup)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parts = append(parts, doc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Merge(parts, strings.Join(paths, ", "))
}

// Merge merges documents loaded from files (each with its Path) into one with koanf, the
// way LoadFiles does; label becomes the merged document's Path.
func Merge(parts []*Document, label string) (*Document, error) {
	m := &merger{origins: &Origins{owners: map[string]string{}}}
	k := koanf.New(keyDelim)
	for _, doc := range parts {
		m.file = doc.Path
		sites := make([]any, len(doc.Sites))
		for i, s := range doc.Sites {
			sites[i] = s
		}
		in := map[string]any{"global": doc.Global, "sites": sites}
		if err := k.Load(mapProvider(in), nil, koanf.WithMergeFunc(m.merge)); err != nil {
			return nil, err
		}
		m.origins.parts = append(m.origins.parts, part{file: doc.Path, shape: doc.Shape, first: m.sites, count: len(doc.Sites)})
		m.sites += len(doc.Sites)
	}
	if len(m.conflicts) > 0 {
		return nil, &ConflictError{Conflicts: m.conflicts}
	}
	merged := normalize(k.Raw()).(map[string]Node)
	out := &Document{Path: label, Shape: ShapeFull, Global: map[string]Node{}, Origins: m.origins, Substitutions: &Substitutions{}}
	if g, ok := merged["global"].(map[string]Node); ok {
		out.Global = g
	}
	for _, s := range m.siteList {
		out.Sites = append(out.Sites, s.(map[string]Node))
	}
	for _, doc := range parts {
		out.Substitutions.add(doc.Substitutions)
		out.Files = append(out.Files, doc.Path)
	}
	return out, nil
}

// keyDelim is koanf's key delimiter: a byte that never appears in keys, so keys that contain
// dots (such as the proxy prefix "/v1.2") are kept whole.
const keyDelim = "\x1f"

// mapProvider is a koanf.Provider of a map already parsed.
type mapProvider map[string]any

// ReadBytes implements koanf.Provider; a mapProvider has no bytes.
func (mapProvider) ReadBytes() ([]byte, error) { return nil, errors.New("mapProvider: no bytes") }

// Read implements koanf.Provider.
func (p mapProvider) Read() (map[string]any, error) { return p, nil }

// merger is koanf's merge function for config files: sites are appended to siteList, global
// keys merged key by key, and a key two files set is recorded as a conflict.
type merger struct {
	file      string
	siteList  []any
	sites     int
	origins   *Origins
	conflicts []Conflict
}

func (m *merger) merge(src, dest map[string]any) error {
	// The sites are kept beside koanf's map, not in it: koanf copies its whole map on each
	// merge with a merge function, which made loading n files O(n²) in their sites.
	if s, ok := src["sites"].([]any); ok {
		m.siteList = append(m.siteList, s...)
	}
	g, _ := src["global"].(map[string]any)
	dg, _ := dest["global"].(map[string]any)
	if dg == nil {
		dg = map[string]any{}
	}
	m.mergeMap(g, dg, "global")
	dest["global"] = dg
	return nil
}

// mergeMap merges src into dest at path: objects merge key by key, any other value (an
// array too) is owned by one file.
func (m *merger) mergeMap(src, dest map[string]any, path string) {
	for _, key := range SortedKeys(src) {
		v, p := src[key], Join(path, key)
		sm, srcObj := v.(map[string]any)
		old, exists := dest[key]
		dm, destObj := old.(map[string]any)
		switch {
		case !exists:
			dest[key] = v
			m.own(v, p)
		case srcObj && destObj:
			m.mergeMap(sm, dm, p)
		default:
			m.conflicts = append(m.conflicts, Conflict{Path: p, Files: [2]string{m.origins.fileOf(p), m.file}})
		}
	}
}

// own records m.file as the owner of every leaf under v at path.
func (m *merger) own(v any, path string) {
	if o, ok := v.(map[string]any); ok && len(o) > 0 {
		for k, e := range o {
			m.own(e, Join(path, k))
		}
		return
	}
	m.origins.owners[path] = m.file
}

// Conflict is one key two config files set.
type Conflict struct {
	// Path is the key ("global.admin.bind"); Files are the first file that set it and the
	// later one that set it again.
	Path  string
	Files [2]string
}

// ConflictError lists every key that more than one config file sets.
type ConflictError struct {
	Conflicts []Conflict
}

// Error implements error: one line per conflict.
func (e *ConflictError) Error() string {
	lines := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		lines[i] = fmt.Sprintf("%s: error at %s: is also set in %s (a key may be set in one config file only)", c.Files[1], c.Path, c.Files[0])
	}
	return strings.Join(lines, "\n")
}

// Origins records which file each part of a merged document came from, so that diagnostics
// about it name the file and the path inside it.
type Origins struct {
	parts []part
	// owners maps each global leaf path ("global.admin.bind") to the file that set it.
	owners map[string]string
	// overrides are the keys assignments (--set, CONDUIT_SET_*) set, in order.
	overrides []override
}

// part is the share of one file in a merged document: its sites are sites[first] to
// sites[first+count-1] of the merged document.
type part struct {
	file         string
	shape        Shape
	first, count int
}

// fileOf returns the files that set the global path p, a key under it or above it; for a
// key no file sets, those of its closest enclosing object below "global".
func (o *Origins) fileOf(p string) string {
	for {
		if files := o.filesOf(p); len(files) > 0 {
			return strings.Join(files, " and ")
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 || p[:i] == "global" {
			return ""
		}
		p = p[:i]
	}
}

// filesOf returns, in file order, the files that set the global path p, a key above it or
// a key under it.
func (o *Origins) filesOf(p string) []string {
	set := map[string]bool{}
	for owned, f := range o.owners {
		if under(p, owned) || strings.HasPrefix(owned, p+".") {
			set[f] = true
		}
	}
	var out []string
	for _, pt := range o.parts {
		if set[pt.file] {
			out = append(out, pt.file)
			delete(set, pt.file)
		}
	}
	for f := range set { // a file still merging (no part yet)
		out = append(out, f)
	}
	sort.Strings(out[len(out)-len(set):])
	return out
}

// sitePathRE matches a merged document's site index at the start of a path or anywhere in a
// message ("also sites[3]").
var sitePathRE = regexp.MustCompile(`\bsites\[(\d+)\]`)

// Locate returns the file a merged document's path (as a diagnostic spells it) is about and
// the path inside that file: "sites[3].port" may be "b.yaml" and "sites[0].port", or
// "port" for a file of the single-site shape. A path no one file owns (such as "sites")
// returns "" and the path unchanged.
func (o *Origins) Locate(path string) (file, local string) {
	if o == nil {
		return "", path
	}
	for i := len(o.overrides) - 1; i >= 0; i-- {
		if ov := o.overrides[i]; under(path, ov.path) {
			return ov.source, path
		}
	}
	if loc := sitePathRE.FindStringSubmatchIndex(path); loc != nil && loc[0] == 0 {
		i, err := strconv.Atoi(path[loc[2]:loc[3]])
		if err != nil {
			return "", path
		}
		for _, pt := range o.parts {
			if i >= pt.first && i < pt.first+pt.count {
				return pt.file, pt.localSite(i, path[loc[1]:])
			}
		}
		return "", path
	}
	if path == "global" || strings.HasPrefix(path, "global.") {
		return o.fileOf(path), path
	}
	return "", path
}

// under reports whether path is p or a path inside it.
func under(path, p string) bool {
	if p == "" { // the whole site of a single-site document
		return path != "global" && !strings.HasPrefix(path, "global.")
	}
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// localSite is the path of merged site i followed by rest, as the part's file spells it.
func (pt part) localSite(i int, rest string) string {
	if pt.shape == ShapeSingle {
		return strings.TrimPrefix(rest, ".")
	}
	return Index("sites", i-pt.first) + rest
}

// rewriteMessage replaces each merged site index in msg with its file and local path.
func (o *Origins) rewriteMessage(msg string) string {
	if o == nil {
		return msg
	}
	return sitePathRE.ReplaceAllStringFunc(msg, func(s string) string {
		file, local := o.Locate(s)
		if file == "" {
			return s
		}
		if local == "" {
			return file
		}
		return file + ": " + local
	})
}

// add records every substitution of other in s.
func (s *Substitutions) add(other *Substitutions) {
	if other == nil {
		return
	}
	for v := range other.values {
		if s.values == nil {
			s.values, s.strings = map[string]bool{}, map[string]bool{}
		}
		s.values[v] = true
	}
	for v := range other.strings {
		s.strings[v] = true
	}
	for k, v := range other.unset {
		if s.unset == nil {
			s.unset = map[string][]string{}
		}
		s.unset[k] = v
	}
}
