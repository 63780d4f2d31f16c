package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Expand replaces $NAME references in s with the values lookup returns, inserted byte for
// byte. It is applied to the scalars of a parsed document (see Parse), never to its text, so
// a value can hold any characters (" #", "*name", "!!tag", quotes, newlines, "{", ": ")
// without changing the document's structure.
//
//   - NAME starts with a letter or '_' and continues with letters, digits or '_';
//   - an unset variable stays as the literal "$NAME" (and is listed in unset);
//   - "$42", "$$VAR" (both dollars and the name) and a trailing "$" are left untouched.
//     There is no ${VAR} syntax: "${VAR}" stays as written.
//
// Inserted values are not expanded again.
func Expand(s string, lookup func(string) (string, bool)) (out string, set, unset []string) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		// "$$": both dollars and whatever name follows stay literal.
		if i+1 < len(s) && s[i+1] == '$' {
			j := i
			for j < len(s) && s[j] == '$' {
				j++
			}
			for j < len(s) && isNameByte(s[j], false) {
				j++
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		j := i + 1
		if j >= len(s) || !isNameByte(s[j], true) {
			b.WriteByte('$')
			i++
			continue
		}
		for j < len(s) && isNameByte(s[j], false) {
			j++
		}
		name := s[i+1 : j]
		if v, ok := lookup(name); ok {
			b.WriteString(v)
			set = append(set, name)
		} else {
			b.WriteString(s[i:j])
			unset = append(unset, name)
		}
		i = j
	}
	return b.String(), set, unset
}

// reference is a whole value that is one variable reference: $NAME or ${NAME}.
var reference = regexp.MustCompile(`^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$`)

// LooksLikeReference reports whether s is nothing but a variable reference ($NAME or
// ${NAME}): a token or password with that text is a placeholder some shell or template
// did not expand.
func LooksLikeReference(s string) bool { return reference.MatchString(s) }

func isNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

// Substitutions records what $VAR substitution did to one document, so that diagnostics
// never echo a value that came from the environment and secrets that are still a "$NAME"
// placeholder can be refused (see Diagnostics.Track). The zero value records nothing.
type Substitutions struct {
	// values are the variable values that were inserted.
	values map[string]bool
	// strings are the final scalars that contain an inserted value.
	strings map[string]bool
	// unset maps a final scalar to the names of the unset variables it still references.
	unset map[string][]string
}

// note records the outcome of one Expand.
func (s *Substitutions) note(out string, set, unset []string, lookup func(string) (string, bool)) {
	if len(set) > 0 {
		if s.values == nil {
			s.values, s.strings = map[string]bool{}, map[string]bool{}
		}
		s.strings[out] = true
		for _, name := range set {
			v, _ := lookup(name)
			s.values[v] = true
		}
	}
	if len(unset) > 0 {
		if s.unset == nil {
			s.unset = map[string][]string{}
		}
		s.unset[out] = unset
	}
}

// FromEnvironment reports whether the string s contains a value inserted from the
// environment.
func (s *Substitutions) FromEnvironment(str string) bool { return s != nil && s.strings[str] }

// Unset returns the unset variables that the scalar str still references as "$NAME".
func (s *Substitutions) Unset(str string) []string {
	if s == nil {
		return nil
	}
	return s.unset[str]
}

// scrub replaces every inserted value of at least minScrubLen bytes in msg (as written and
// as %q writes it) with "[REDACTED]", for messages that format a value themselves.
func (s *Substitutions) scrub(msg string) string {
	if s == nil {
		return msg
	}
	for v := range s.values {
		if len(v) < minScrubLen {
			continue
		}
		msg = strings.ReplaceAll(msg, v, redacted)
		if q := fmt.Sprintf("%q", v); len(q) > 2 {
			msg = strings.ReplaceAll(msg, q[1:len(q)-1], redacted)
		}
	}
	return msg
}

// minScrubLen is the shortest inserted value scrub hides: shorter values (ports, flags,
// small numbers) would blank out unrelated parts of messages, and paths and decode errors
// never echo a substituted value of any length (see describe).
const minScrubLen = 6

// substituteYAML expands references in every string scalar (keys and values) of a parsed
// YAML tree, in place. A plain (unquoted) value that is exactly one resolved reference
// takes the type its value spells (an integer, a decimal number, true or false), as it did
// when substitution was textual; every other substituted scalar is a string, byte for byte.
func (s *Substitutions) substituteYAML(n *yamlv3.Node, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yamlv3.DocumentNode, yamlv3.SequenceNode:
		for _, c := range n.Content {
			if err := s.substituteYAML(c, lookup); err != nil {
				return err
			}
		}
	case yamlv3.MappingNode:
		// seen maps each key to whether substitution changed it. Two equal keys of which
		// one was substituted are reported here, as yaml's own message would print the key.
		seen := map[string]bool{}
		for i, c := range n.Content {
			before := c.Value
			if err := s.substituteYAML(c, lookup); err != nil {
				return err
			}
			if i%2 == 1 || c.Kind != yamlv3.ScalarNode {
				continue
			}
			changed := c.Value != before
			if prev, dup := seen[c.Value]; dup && (prev || changed) {
				return fmt.Errorf("line %d: this key repeats an earlier key of the same object after $VAR substitution", c.Line)
			}
			seen[c.Value] = changed
		}
	case yamlv3.ScalarNode:
		s.substituteScalar(n, lookup)
	}
	return nil
}

// substituteScalar expands one string scalar node.
func (s *Substitutions) substituteScalar(n *yamlv3.Node, lookup func(string) (string, bool)) {
	if n.ShortTag() != "!!str" || strings.IndexByte(n.Value, '$') < 0 {
		return
	}
	out, set, unset := Expand(n.Value, lookup)
	s.note(out, set, unset, lookup)
	if len(set) == 0 {
		return
	}
	wholeRef := len(set) == 1 && len(unset) == 0 && n.Value == "$"+set[0]
	if n.Style == 0 && wholeRef {
		if tag := plainTag(out); tag != "" {
			n.Value, n.Tag = out, tag
			return
		}
	}
	n.Value, n.Tag, n.Style = out, "!!str", yamlv3.DoubleQuotedStyle
}

// bareReference resolves a $NAME that stood outside a JSON string: the decimal number or
// boolean its value spells (see plainTag), else the value as a string; unset, the text
// "$NAME".
func (s *Substitutions) bareReference(ref string, lookup func(string) (string, bool)) any {
	out, set, unset := Expand(ref, lookup)
	s.note(out, set, unset, lookup)
	if len(set) == 0 {
		return out
	}
	switch plainTag(out) {
	case "!!int", "!!float":
		// A JSON number: decimal (no octal reading of "010"), a float64 like every other.
		if f, err := strconv.ParseFloat(out, 64); err == nil {
			return f
		}
	case "!!bool":
		return strings.EqualFold(out, "true")
	}
	return out
}

// plainNumber is a decimal number as a variable's value may spell it in an unquoted
// position: digits with an optional sign, fraction and exponent.
var plainNumber = regexp.MustCompile(`^[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?$`)

// plainTag returns the YAML tag a variable's value gets in an unquoted position: !!int,
// !!float or !!bool, or "" for a string. It only returns a tag yaml decodes the value
// with, so decoding never fails (and never prints the value).
func plainTag(v string) string {
	if plainNumber.MatchString(v) {
		if _, err := strconv.ParseInt(v, 0, 64); err == nil {
			return "!!int"
		}
		if _, err := strconv.ParseUint(v, 0, 64); err == nil {
			return "!!int"
		}
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return "!!float"
		}
		return ""
	}
	switch {
	case v == "true" || v == "false" || v == "True" || v == "False" || v == "TRUE" || v == "FALSE":
		return "!!bool"
	}
	return ""
}

// bareMark starts the JSON string quoteBareReferences makes of a bare $NAME.
const bareMark = "\x00bare"

// quoteBareReferences turns each $NAME outside a JSON string (not JSON, but accepted when
// substitution was textual: {"port": $PORT}) into the string "\u0000bare$NAME", which
// substituteTree resolves like an unquoted YAML value. A document that already spells
// \u0000 is left alone.
func quoteBareReferences(data []byte) []byte {
	if !strings.Contains(string(data), "$") || strings.Contains(string(data), `\u0000`) {
		return data
	}
	var b strings.Builder
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\' && i+1 < len(data):
			b.WriteByte(c)
			i++
			c = data[i]
		case c == '"':
			inString = !inString
		case !inString && c == '$' && i+1 < len(data) && isNameByte(data[i+1], true):
			j := i + 1
			for j < len(data) && isNameByte(data[j], false) {
				j++
			}
			b.WriteString(`"\u0000bare` + string(data[i:j]) + `"`)
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return []byte(b.String())
}

// substituteTree expands references in every string (keys and values) of a decoded JSON
// tree and returns the new tree.
func (s *Substitutions) substituteTree(n any, lookup func(string) (string, bool)) (any, error) {
	switch v := n.(type) {
	case string:
		if ref, bare := strings.CutPrefix(v, bareMark); bare && LooksLikeReference(ref) {
			return s.bareReference(ref, lookup), nil
		}
		out, set, unset := Expand(v, lookup)
		s.note(out, set, unset, lookup)
		return out, nil
	case []any:
		for i, e := range v {
			ne, err := s.substituteTree(e, lookup)
			if err != nil {
				return nil, err
			}
			v[i] = ne
		}
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			// A key is always a string, even a bare $NAME whose value spells a number.
			k = strings.TrimPrefix(k, bareMark)
			nk, set, unset := Expand(k, lookup)
			s.note(nk, set, unset, lookup)
			ne, err := s.substituteTree(e, lookup)
			if err != nil {
				return nil, err
			}
			if _, dup := out[nk]; dup {
				return nil, fmt.Errorf("two keys of one object are equal after $VAR substitution")
			}
			out[nk] = ne
		}
		return out, nil
	}
	return n, nil
}
