package cli

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"
)

func init() {
	RegisterCommand(Command{Name: "man", Summary: "print the conduit(1) man page (roff; view with: conduit man | man -l -)", Run: runMan, NoConfig: true})
}

func runMan(env *Env, args []string) int {
	if code, ok := parseNoArgs(env, "man", args); !ok {
		return code
	}
	if f, ok := env.Stdout.(*os.File); ok && isTerminal(f) {
		fmt.Fprintln(env.Stderr, "conduit man prints roff; read it with: conduit man | man -l -")
	}
	WriteMan(env.Stdout)
	return 0
}

// isTerminal reports whether f is a terminal (not a pipe, a file or /dev/null).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// WriteMan writes the conduit(1) man page in roff (man macros), built from the command table:
// the same commands, synopses and flags as `conduit help COMMAND`.
func WriteMan(w io.Writer) {
	p := func(format string, a ...any) {
		line := fmt.Sprintf(format, a...)
		if strings.HasPrefix(line, ".") {
			fmt.Fprintln(w, line)
			return
		}
		for _, l := range wrap(line, 78) {
			if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
				l = `\&` + l
			}
			fmt.Fprintln(w, l)
		}
	}
	p(`.TH CONDUIT 1 %s "conduit %s" "User Commands"`, manDate(), roffText(Version()))
	p(".SH NAME")
	p(`conduit \- reverse proxy and API gateway`)
	p(".SH SYNOPSIS")
	p(".B conduit")
	p(`.RB [ \-c`)
	p(".IR FILE ]")
	p(".RI [ command ]")
	p(".RI [ flags ]")
	p(".RI [ FILE ]")
	p(".SH DESCRIPTION")
	p("With no command, conduit serves its configuration: it loads and validates the file " +
		"(exit 1 on an error), binds every port, starts the Admin API when global.admin is set, " +
		"and serves until SIGTERM or SIGINT; SIGHUP reloads the file; SIGUSR2 starts the binary on disk " +
		"with every listener handed over and exits once it serves (see upgrade).")
	for _, n := range globalNotes {
		p(".PP")
		p("%s", roffText(n))
	}
	p(".SH OPTIONS")
	for _, f := range globalFlags {
		p(".TP")
		p("%s", flagHead(f))
		p("%s", roffText(globalFlagText[f.Names[0]]))
	}
	p(".SH COMMANDS")
	for _, c := range Commands() {
		info := describe(c)
		p(".SS %s", roffText(strings.TrimSpace("conduit "+c.Name+" "+info.Synopsis)))
		p("%s", roffText(sentence(c.Summary)))
		for _, f := range info.Flags {
			p(".TP")
			p("%s", flagHead(f))
			text := f.Usage
			if f.Default != "" {
				text += " (default " + f.Default + ")"
			}
			p("%s", roffText(sentence(text)))
		}
	}
	p(".SH ENVIRONMENT")
	for _, v := range environment {
		p(".TP")
		p(".B %s", v.name)
		p("%s", roffText(sentence(v.text)))
	}
	p(".SH FILES")
	p(".TP")
	p(".I conduit.json, conduit.yaml, conduit.yml")
	p("The config file looked for in the working directory when neither \\-c nor a FILE argument names one.")
	p(".SH EXIT STATUS")
	p("0 on success, including after a graceful shutdown; 1 for any error (a config that does not " +
		"load or validate, a failed probe, an Admin API that cannot be reached).")
	p(".SH SEE ALSO")
	p("The documentation in the docs directory of the source tree, starting with configuration.md and cli.md.")
}

// manDate is the page's date: the commit time the binary was built from, else
// $SOURCE_DATE_EPOCH, else today (UTC).
func manDate() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t.UTC().Format("2006-01-02")
				}
			}
		}
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err == nil {
			return time.Unix(n, 0).UTC().Format("2006-01-02")
		}
	}
	return time.Now().UTC().Format("2006-01-02")
}

// wrap breaks a text line at spaces into lines of at most width bytes (a longer word stays
// whole); roff joins them again, and man-page linters ask for short source lines.
func wrap(s string, width int) []string {
	var out []string
	for len(s) > width {
		i := strings.LastIndexByte(s[:width+1], ' ')
		if i <= 0 {
			i = strings.IndexByte(s, ' ')
			if i < 0 {
				break
			}
		}
		out = append(out, s[:i])
		s = strings.TrimLeft(s[i:], " ")
	}
	return append(out, s)
}

// globalFlagText describes the global options for the man page.
var globalFlagText = map[string]string{
	"c":        "The config file, or a directory of *.yaml, *.yml and *.json files; repeatable, the files are merged in order. A config-reading command also takes files by name. Without it, conduit looks for conduit.json, conduit.yaml, then conduit.yml.",
	"no-color": "No colour in the output, even on a terminal (as NO_COLOR does).",
	"h":        "Print the list of commands and exit.",
	"V":        "Print the version and the compiled-in modules and exit.",
}

// flagHead is a .TP head line: the flag's spellings in bold, its value in italics.
func flagHead(f FlagInfo) string {
	var parts []string
	for _, s := range f.Spellings() {
		parts = append(parts, `\fB`+strings.ReplaceAll(s, "-", `\-`)+`\fR`)
	}
	head := strings.Join(parts, ", ")
	if f.Value != "" {
		head += ` \fI` + roffText(f.Value) + `\fR`
	}
	return head
}

// sentence makes s start with a capital letter and end with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, ")") {
		s += "."
	}
	return s
}

// roffText escapes text for a roff line: backslashes, hyphens, and a leading dot or quote
// that roff would take for a request.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	s = strings.ReplaceAll(s, "\n", " ")
	var b strings.Builder
	for _, r := range s {
		if r > 0x7e {
			fmt.Fprintf(&b, `\[u%04X]`, r)
			continue
		}
		b.WriteRune(r)
	}
	s = b.String()
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
