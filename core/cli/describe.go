package cli

import (
	"bytes"
	"flag"
	"io"
	"slices"
	"sort"
	"strings"
)

// CommandInfo is what `conduit help COMMAND`, `conduit man` and shell completion know about
// a command. It is read from the flag set the command's Run builds and parses (Describe runs
// the command in describe mode: ParseFlags hands its flag set over instead of parsing), so
// the documented and completed flags are the flags the command accepts.
type CommandInfo struct {
	// Name is the word after `conduit`; Summary is the command table's one line.
	Name, Summary string
	// Synopsis is the usage line after `conduit NAME` (SetUsage's argument).
	Synopsis string
	// Flags are the command's flags, aliases (-c, --config) grouped into one entry.
	Flags []FlagInfo
	// Args is what the command takes as positional arguments, read from Synopsis.
	Args ArgInfo
}

// FlagInfo is one flag and its aliases.
type FlagInfo struct {
	// Names are the flag's names without dashes, shortest first ("c", "config").
	Names []string
	// Value is the placeholder of the flag's value ("FILE", "duration"); "" for a bool.
	Value string
	// Usage is the flag's help text, Default its default value as text ("" when zero).
	Usage, Default string
	// Choices are the values the flag accepts, when it accepts a fixed set (ChoiceVar).
	Choices []string
	// Files reports a flag whose value is a path (its placeholder is FILE or DIR).
	Files bool
}

// ArgInfo is what a command takes as positional arguments, read from its synopsis:
// alternatives of lowercase words (`bash|zsh`) are fixed words, FILE or DIR a path,
// COMMAND a command name. A placeholder just after a flag (`-c FILE`) is that flag's value.
type ArgInfo struct {
	// Words are the fixed words the first argument can be (subcommands, shell names).
	Words []string
	// Files reports that the command takes a file name; Dirs a directory.
	Files, Dirs bool
	// Commands reports that the command takes a command name (help).
	Commands bool
}

// Spellings returns the flag's names with their dashes: -c for one letter, --config
// otherwise.
func (f FlagInfo) Spellings() []string {
	out := make([]string, len(f.Names))
	for i, n := range f.Names {
		if len(n) == 1 {
			out[i] = "-" + n
		} else {
			out[i] = "--" + n
		}
	}
	return out
}

// Describe returns what the command table knows about the command called name. ok is false
// for an unknown command.
func Describe(name string) (CommandInfo, bool) {
	c, ok := lookupCommand(name)
	if !ok {
		return CommandInfo{}, false
	}
	return describe(c), true
}

// Commands returns the visible commands (not Hidden), sorted by name.
func Commands() []Command {
	commands.Lock()
	defer commands.Unlock()
	out := make([]Command, 0, len(commands.m))
	for _, c := range commands.m {
		if !c.Hidden {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// describe runs c with --help in describe mode and reads its flag set. A command that never
// calls ParseFlags is described by its name and summary alone (with --help it only prints).
func describe(c Command) CommandInfo {
	info := CommandInfo{Name: c.Name, Summary: c.Summary}
	var fs *flag.FlagSet
	env := &Env{
		Stdout: io.Discard, Stderr: io.Discard,
		LookupEnv: func(string) (string, bool) { return "", false },
		describe:  func(f *flag.FlagSet) { fs = f },
	}
	c.Run(env, []string{"--help"})
	if fs == nil {
		return info
	}
	info.Synopsis = synopsisOf(fs)
	info.Args = argsOf(info.Synopsis)
	byValue := map[flag.Value]int{}
	fs.VisitAll(func(f *flag.Flag) {
		if i, ok := sameValue(byValue, f.Value); ok {
			fi := &info.Flags[i]
			fi.Names = append(fi.Names, f.Name)
			if len(f.Usage) > len(fi.Usage) {
				_, fi.Usage = flag.UnquoteUsage(f)
			}
			return
		}
		name, usage := flag.UnquoteUsage(f)
		fi := FlagInfo{Names: []string{f.Name}, Value: name, Usage: usage}
		if !isZeroDefault(f) {
			fi.Default = f.DefValue
		}
		if ch, ok := f.Value.(interface{ Choices() []string }); ok {
			fi.Choices = ch.Choices()
		}
		fi.Files = name == "FILE" || name == "DIR"
		if isComparable(f.Value) {
			byValue[f.Value] = len(info.Flags)
		}
		info.Flags = append(info.Flags, fi)
	})
	for i := range info.Flags {
		sort.Slice(info.Flags[i].Names, func(a, b int) bool {
			na, nb := info.Flags[i].Names[a], info.Flags[i].Names[b]
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			return na < nb
		})
	}
	sort.Slice(info.Flags, func(a, b int) bool { return info.Flags[a].Names[0] < info.Flags[b].Names[0] })
	return info
}

// sameValue finds the flag already seen with the same value (two names bound to one variable,
// as -c and --config are).
func sameValue(seen map[flag.Value]int, v flag.Value) (int, bool) {
	if !isComparable(v) {
		return 0, false
	}
	i, ok := seen[v]
	return i, ok
}

// isComparable reports whether v can be a map key (flag values are pointers in practice).
func isComparable(v flag.Value) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = map[flag.Value]bool{v: true}
	return true
}

// isZeroDefault reports a default not worth printing: false, 0, "" or 0s.
func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return true
	}
	return false
}

// synopsisOf returns the usage line SetUsage prints for fs, after "usage: conduit NAME".
func synopsisOf(fs *flag.FlagSet) string {
	var buf bytes.Buffer
	out := fs.Output()
	fs.SetOutput(&buf)
	fs.Usage()
	fs.SetOutput(out)
	first, _, _ := strings.Cut(buf.String(), "\n")
	prefix := "usage: " + fs.Name()
	if !strings.HasPrefix(first, prefix) {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(first, prefix))
}

// argsOf reads the positional arguments from a synopsis (see ArgInfo).
func argsOf(synopsis string) ArgInfo {
	var a ArgInfo
	afterFlag := false
	for _, tok := range strings.Fields(synopsis) {
		tok = strings.Trim(tok, "[]()")
		if strings.HasPrefix(tok, "-") {
			afterFlag = !strings.Contains(tok, "=")
			continue
		}
		if afterFlag {
			afterFlag = false
			continue
		}
		switch tok {
		case "FILE":
			a.Files = true
		case "DIR":
			a.Dirs = true
		case "COMMAND":
			a.Commands = true
		default:
			if isWordList(tok) {
				for _, w := range strings.Split(tok, "|") {
					if !slices.Contains(a.Words, w) {
						a.Words = append(a.Words, w)
					}
				}
			}
		}
	}
	return a
}

// isWordList reports whether tok is one lowercase word or alternatives of them (a|b|c).
func isWordList(tok string) bool {
	if tok == "" || tok == "flags" || tok == "|" {
		return false
	}
	for _, w := range strings.Split(tok, "|") {
		if w == "" {
			return false
		}
		for _, r := range w {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// choiceValue is a string flag that accepts one of a fixed set of values (or, when lenient,
// any value, the set being what help and completion suggest).
type choiceValue struct {
	p       *string
	choices []string
	lenient bool
}

// String implements flag.Value.
func (c *choiceValue) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

// Set implements flag.Value: s must be one of the choices.
func (c *choiceValue) Set(s string) error {
	if !c.lenient && !slices.Contains(c.choices, s) {
		return &choiceError{value: s, choices: c.choices}
	}
	*c.p = s
	return nil
}

// Choices returns the accepted values, for help, man and completion.
func (c *choiceValue) Choices() []string { return c.choices }

// choiceError is a value outside a ChoiceVar's set.
type choiceError struct {
	value   string
	choices []string
}

// Error implements error.
func (e *choiceError) Error() string {
	return "must be one of " + strings.Join(e.choices, ", ") + ", not " + quote(e.value)
}

func quote(s string) string { return `"` + s + `"` }

// ChoiceVar defines a string flag that accepts only one of choices; help, man and shell
// completion list them.
func ChoiceVar(fs *flag.FlagSet, p *string, name, value string, choices []string, usage string) {
	*p = value
	fs.Var(&choiceValue{p: p, choices: choices}, name, usage+" ("+strings.Join(choices, "|")+")")
}

// SuggestVar defines a string flag whose usual values are suggestions: help, man and shell
// completion list them, and the command checks the value itself (it may accept other
// spellings).
func SuggestVar(fs *flag.FlagSet, p *string, name, value string, suggestions []string, usage string) {
	*p = value
	fs.Var(&choiceValue{p: p, choices: suggestions, lenient: true}, name, usage)
}
