// Package config loads Conduit configuration files: discovery, $VAR substitution, the three
// top-level shapes, and strict, path-annotated decoding of sections into typed structs.
//
// It is pure: it opens no sockets and starts no goroutines.
package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Diagnostic is one error or warning about a configuration, tied to the exact path of the value
// it is about (for example "sites[0].proxy./api.retry.attempts").
type Diagnostic struct {
	Path    string
	Message string
	Warning bool
	// File is the config file the diagnostic is about when the configuration was merged
	// from several files ("" otherwise); Path is then the path inside that file.
	File string
}

// String renders the diagnostic the way `conduit validate` prints it, after "FILE: " when
// it names a file.
func (d Diagnostic) String() string {
	kind := "error"
	if d.Warning {
		kind = "warning"
	}
	prefix := ""
	if d.File != "" {
		prefix = d.File + ": "
	}
	if d.Path == "" {
		return prefix + kind + ": " + d.Message
	}
	return prefix + kind + " at " + d.Path + ": " + d.Message
}

// Where is the diagnostic's place for a log line: "FILE: PATH" when it names a file,
// otherwise its path.
func (d Diagnostic) Where() string {
	if d.File == "" {
		return d.Path
	}
	if d.Path == "" {
		return d.File
	}
	return d.File + ": " + d.Path
}

// Diagnostics collects errors and warnings while a configuration is decoded and provisioned.
// The zero value is ready to use.
type Diagnostics struct {
	items []Diagnostic
	// subs is what $VAR substitution did to the document being checked (see Track).
	subs *Substitutions
	// origins names the file of each diagnostic of a merged document (see TrackDocument).
	origins *Origins
}

// TrackDocument is Track of doc's substitutions; for a document merged from several files
// it also makes every diagnostic name its file and the path inside it (Origins.Locate).
func (d *Diagnostics) TrackDocument(doc *Document) {
	d.subs = doc.Substitutions
	d.origins = doc.Origins
}

// record appends it, locating it in its file when d tracks a merged document.
func (d *Diagnostics) record(it Diagnostic) {
	if d.origins != nil && it.File == "" {
		it.File, it.Path = d.origins.Locate(it.Path)
		it.Message = d.origins.rewriteMessage(it.Message)
	}
	d.items = append(d.items, it)
}

// Track tells d what $VAR substitution did to the document being checked: messages then
// never show a value that came from the environment ([REDACTED] instead), and secrets
// (Secret) that still reference an unset variable are errors.
func (d *Diagnostics) Track(s *Substitutions) { d.subs = s }

// Unset returns the unset variables the scalar s still references as "$NAME" (nil when d
// tracks no substitutions).
func (d *Diagnostics) Unset(s string) []string { return d.subs.Unset(s) }

// Errorf records an error at path.
func (d *Diagnostics) Errorf(path, format string, args ...any) {
	d.record(Diagnostic{Path: path, Message: d.subs.scrub(fmt.Sprintf(format, args...))})
}

// Warnf records a warning at path.
func (d *Diagnostics) Warnf(path, format string, args ...any) {
	d.record(Diagnostic{Path: path, Message: d.subs.scrub(fmt.Sprintf(format, args...)), Warning: true})
}

// describe is Describe, except that a string holding a value from the environment is
// described by its length only.
func (d *Diagnostics) describe(n Node) string {
	if s, ok := n.(string); ok && d.subs.FromEnvironment(s) {
		return fmt.Sprintf("a string of %d characters from the environment", len(s))
	}
	return describe(n)
}

// Merge appends every diagnostic of other.
func (d *Diagnostics) Merge(other *Diagnostics) {
	if other == nil {
		return
	}
	for _, it := range other.items {
		it.Message = d.subs.scrub(it.Message)
		d.record(it)
	}
}

// Errors returns the errors in the order they were found.
func (d *Diagnostics) Errors() []Diagnostic { return d.filter(false) }

// Warnings returns the warnings in the order they were found.
func (d *Diagnostics) Warnings() []Diagnostic { return d.filter(true) }

// HasErrors reports whether any error was recorded.
func (d *Diagnostics) HasErrors() bool {
	for _, it := range d.items {
		if !it.Warning {
			return true
		}
	}
	return false
}

// Len returns how many diagnostics were recorded (errors and warnings).
func (d *Diagnostics) Len() int { return len(d.items) }

func (d *Diagnostics) filter(warning bool) []Diagnostic {
	var out []Diagnostic
	for _, it := range d.items {
		if it.Warning == warning {
			out = append(out, it)
		}
	}
	return out
}

// Err returns nil when there are no errors, otherwise an *Error listing them all.
func (d *Diagnostics) Err() error {
	errs := d.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &Error{Diagnostics: errs}
}

// Error is a configuration that failed validation. Its message lists every error, one per line.
type Error struct {
	Diagnostics []Diagnostic
}

// Error implements error.
func (e *Error) Error() string {
	lines := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Join appends key to a dotted path. Keys are written as they are, even when they contain dots
// or slashes, so that a proxy prefix reads "proxy./api".
func Join(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// Index appends an array index to a path: Index("routes", 2) is "routes[2]".
func Index(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

// Suggest returns the candidate closest to key by edit distance, or "" when none is close
// enough to be a plausible typo.
func Suggest(key string, candidates []string) string {
	best, bestDist := "", 1<<30
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	lk := strings.ToLower(key)
	for _, c := range sorted {
		dist := editDistance(lk, strings.ToLower(c))
		if dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := 2
	if len(key) > 8 {
		limit = 3
	}
	if bestDist <= limit {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance (Levenshtein plus transpositions).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
