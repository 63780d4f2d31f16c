package cli

import (
	"fmt"
	"slices"
	"strings"
)

func init() {
	RegisterCommand(Command{Name: "completions", Summary: "print a shell completion script (bash, zsh, fish, powershell)", Run: runCompletions, NoConfig: true})
	RegisterCommand(Command{Name: completeCommand, Summary: "print completion candidates for a partial command line (used by the completion scripts)", Run: runComplete, NoConfig: true, Hidden: true})
}

// completeCommand is the hidden command the completion scripts call with the words typed so
// far; the candidates come from the command table (Describe), so the scripts never list a
// command or a flag themselves.
const completeCommand = "__complete"

// shells are the completion scripts `conduit completions` prints; power-shell is the
// spelling docs/compatibility.md keeps for powershell.
var shells = map[string]string{
	"bash": bashScript, "zsh": zshScript, "fish": fishScript,
	"powershell": powershellScript, "power-shell": powershellScript,
}

func runCompletions(env *Env, args []string) int {
	pos, code, ok := parseArgs(env, "completions", "bash|zsh|fish|powershell|power-shell", 1, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Stderr, "usage: conduit completions bash|zsh|fish|powershell|power-shell")
		return 1
	}
	script, ok := shells[pos[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "conduit completions: unknown shell %q (bash, zsh, fish, powershell)\n", pos[0])
		return 1
	}
	fmt.Fprint(env.Stdout, script)
	return 0
}

// Completion is the answer to a partial command line: what kind of candidates the shell
// should offer and, for words, which.
type Completion struct {
	// Kind is "words" (Words are the candidates), "files", "dirs" (the shell completes
	// paths itself) or "none".
	Kind  string
	Words []string
}

// runComplete prints the completion of `conduit __complete SHELL WORD...`: the kind on the
// first line, then one candidate per line. The last word is the one being completed ("" for
// a new word).
func runComplete(env *Env, args []string) int {
	if len(args) < 1 {
		return 1
	}
	shell, ws := args[0], slices.Clone(args[1:])
	if shell == "powershell" {
		// Older PowerShell drops an empty argument; the script sends "" for a new word.
		for i, w := range ws {
			if w == `""` {
				ws[i] = ""
			}
		}
	}
	c := CompleteLive(ws, shell == "bash", func(flag string, done []string) []string { return liveNames(env, flag, done) })
	fmt.Fprintln(env.Stdout, c.Kind)
	for _, w := range c.Words {
		fmt.Fprintln(env.Stdout, w)
	}
	return 0
}

// globalFlags are the options accepted before any command (Run's own switch and
// hoistGlobalOptions).
var globalFlags = []FlagInfo{
	{Names: []string{"c", "config"}, Value: "FILE", Files: true},
	{Names: []string{"h", "help"}},
	{Names: []string{"V", "version"}},
	{Names: []string{"no-color"}},
}

// Complete completes a command line: words are the words after the program name, the last
// one being completed. bash splits `--flag=value` into three words (`--flag`, `=`, `value`)
// and replaces only the part after `=`; with splitEquals the candidates for such a word are
// values alone, otherwise `--flag=value`.
func Complete(words []string, splitEquals bool) Completion {
	return CompleteLive(words, splitEquals, nil)
}

// CompleteLive is Complete that also completes the values of --route, --target and --site
// with the names live returns (nil: none): given the flag's name and the words typed before
// the one being completed, it asks a running instance.
func CompleteLive(words []string, splitEquals bool, live func(flag string, done []string) []string) Completion {
	if len(words) == 0 {
		words = []string{""}
	}
	words, joined := joinEquals(words)
	cur := words[len(words)-1]
	done := words[:len(words)-1]
	// The command word: the first word that is neither a global option nor its value.
	cmdAt := -1
	for i := 0; i < len(done); i++ {
		w := done[i]
		if !strings.HasPrefix(w, "-") {
			cmdAt = i
			break
		}
		if f, ok := findFlag(globalFlags, w); ok && f.Value != "" && !strings.Contains(w, "=") {
			i++
		}
	}
	var info CommandInfo
	flags := globalFlags
	if cmdAt >= 0 {
		var ok bool
		if info, ok = Describe(done[cmdAt]); !ok {
			return Completion{Kind: "none"}
		}
		flags = info.Flags
		done = done[cmdAt+1:]
	} else if run, ok := Describe("run"); ok {
		// No command: the server runs, so run's flags apply.
		info = run
		flags = slices.Clone(globalFlags)
		for _, f := range run.Flags {
			if _, dup := findFlag(flags, f.Names[0]); !dup {
				flags = append(flags, f)
			}
		}
	}
	// A flag's value: `--flag value` or `--flag=value`.
	if name, val, ok := strings.Cut(cur, "="); ok && strings.HasPrefix(cur, "-") {
		f, found := findFlag(flags, name)
		if !found {
			return Completion{Kind: "none"}
		}
		prefix := name + "="
		if splitEquals && joined {
			prefix = ""
		}
		return valueCompletion(f, val, prefix, liveFor(live, done))
	}
	if len(done) > 0 {
		prev := done[len(done)-1]
		if f, ok := findFlag(flags, prev); ok && f.Value != "" && !strings.Contains(prev, "=") {
			return valueCompletion(f, cur, "", liveFor(live, done))
		}
	}
	if strings.HasPrefix(cur, "-") {
		var out []string
		for _, f := range flags {
			for _, s := range f.Spellings() {
				if strings.HasPrefix(s, cur) {
					out = append(out, s)
				}
			}
		}
		return wordList(out)
	}
	if cmdAt < 0 {
		var out []string
		for _, c := range Commands() {
			if strings.HasPrefix(c.Name, cur) {
				out = append(out, c.Name)
			}
		}
		return wordList(out)
	}
	if positionalCount(done, flags) > 0 {
		return Completion{Kind: "none"}
	}
	switch a := info.Args; {
	case a.Commands:
		var out []string
		for _, c := range Commands() {
			if strings.HasPrefix(c.Name, cur) {
				out = append(out, c.Name)
			}
		}
		return wordList(out)
	case len(a.Words) > 0:
		return wordList(filterPrefix(a.Words, cur))
	case a.Dirs:
		return Completion{Kind: "dirs"}
	case a.Files:
		return Completion{Kind: "files"}
	}
	return Completion{Kind: "none"}
}

// joinEquals undoes bash's split of `--flag=value` into `--flag`, `=`, `value`; joined
// reports that the word being completed was rejoined.
func joinEquals(ws []string) (out []string, joined bool) {
	for i := 0; i < len(ws); i++ {
		if ws[i] == "=" && len(out) > 0 && strings.HasPrefix(out[len(out)-1], "-") && !strings.Contains(out[len(out)-1], "=") {
			v := ""
			if i+1 < len(ws) {
				v = ws[i+1]
				i++
			}
			out[len(out)-1] += "=" + v
			joined = i == len(ws)-1
			continue
		}
		out = append(out, ws[i])
		joined = false
	}
	return out, joined
}

// positionalCount counts the arguments in ws that are neither flags nor flag values.
func positionalCount(ws []string, flags []FlagInfo) int {
	n := 0
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		if w == "--" {
			return n + len(ws) - i - 1
		}
		if strings.HasPrefix(w, "-") {
			if f, ok := findFlag(flags, w); ok && f.Value != "" && !strings.Contains(w, "=") {
				i++
			}
			continue
		}
		n++
	}
	return n
}

// findFlag finds the flag spelled w (-c, --config, -config; a trailing =value ignored).
func findFlag(flags []FlagInfo, w string) (FlagInfo, bool) {
	name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
	for _, f := range flags {
		if slices.Contains(f.Names, name) {
			return f, true
		}
	}
	return FlagInfo{}, false
}

// valueCompletion completes the value of flag f from the typed prefix cur; prefix is put
// before each candidate (`--format=`).
func valueCompletion(f FlagInfo, cur, prefix string, live func(string) []string) Completion {
	if live != nil && liveFlags[f.Names[0]] {
		out := filterPrefix(live(f.Names[0]), cur)
		for i := range out {
			out[i] = prefix + out[i]
		}
		return wordList(out)
	}
	switch {
	case len(f.Choices) > 0:
		out := filterPrefix(f.Choices, cur)
		for i := range out {
			out[i] = prefix + out[i]
		}
		return wordList(out)
	case f.Value == "DIR":
		return Completion{Kind: "dirs"}
	case f.Files:
		return Completion{Kind: "files"}
	}
	return Completion{Kind: "none"}
}

func filterPrefix(ws []string, prefix string) []string {
	var out []string
	for _, w := range ws {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}

func wordList(ws []string) Completion { return Completion{Kind: "words", Words: ws} }

// The completion scripts only ask `conduit __complete` and hand the answer to the shell; the
// program they run is the one typed (${COMP_WORDS[0]}, $words[1], …), so a custom build
// completes its own commands.

const bashScript = `# bash completion for conduit; load with: source <(conduit completions bash)
_conduit_complete() {
    local cur=${COMP_WORDS[COMP_CWORD]} out kind
    out=$("${COMP_WORDS[0]}" ` + completeCommand + ` bash "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
    kind=${out%%$'\n'*}
    COMPREPLY=()
    case $kind in
    words)
        [[ $out == *$'\n'* ]] && mapfile -t COMPREPLY <<<"${out#*$'\n'}"
        ;;
    files)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        ;;
    dirs)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        ;;
    esac
    return 0
}
complete -F _conduit_complete conduit
`

const zshScript = `#compdef conduit
# zsh completion for conduit; load with: source <(conduit completions zsh) after compinit,
# or save as _conduit in a directory of $fpath.
_conduit() {
    local -a lines
    lines=("${(@f)$(${words[1]} ` + completeCommand + ` zsh "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    case $lines[1] in
    words) (( ${#lines} > 1 )) && compadd -- "${(@)lines[2,-1]}" ;;
    files) _files ;;
    dirs) _files -/ ;;
    esac
}
if [ "$funcstack[1]" = "_conduit" ]; then
    _conduit "$@"
else
    compdef _conduit conduit
fi
`

const fishScript = `# fish completion for conduit; load with: conduit completions fish | source
function __conduit_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -q cur[1]; or set cur ''
    set -l out ($tokens[1] ` + completeCommand + ` fish $tokens[2..-1] $cur 2>/dev/null)
    switch "$out[1]"
        case words
            printf '%s\n' $out[2..-1]
        case files
            __fish_complete_path $cur
        case dirs
            __fish_complete_directories $cur
    end
end
complete -c conduit -f -a '(__conduit_complete)'
`

const powershellScript = `# PowerShell completion for conduit; load with: conduit completions powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName conduit -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | Where-Object { $_.Extent.StartOffset -lt $cursorPosition } | ForEach-Object { $_.ToString() })
    if ($wordToComplete -eq '') { $words += '""' }
    $out = @(& $words[0] ` + completeCommand + ` powershell @($words | Select-Object -Skip 1) 2>$null)
    switch ($out[0]) {
        'words' {
            $out | Select-Object -Skip 1 | ForEach-Object {
                [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
            }
        }
        { $_ -in 'files', 'dirs' } {
            Get-ChildItem -Path "$wordToComplete*" -ErrorAction SilentlyContinue |
                Where-Object { $out[0] -eq 'files' -or $_.PSIsContainer } | ForEach-Object {
                    [System.Management.Automation.CompletionResult]::new($_.Name, $_.Name, 'ProviderItem', $_.Name)
                }
        }
    }
}
`
