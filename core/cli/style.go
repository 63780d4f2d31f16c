package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/conduitproxy/conduit/core/config"
)

// Style colours text written to one stream. It colours only when the stream is a terminal,
// NO_COLOR is unset or empty (no-color.org), TERM is not "dumb" and --no-color was not given;
// otherwise every method returns its text unchanged.
type Style struct{ on bool }

// StyleFor returns the style of w, one of env's streams.
func StyleFor(env *Env, w io.Writer) Style {
	if env.NoColor {
		return Style{}
	}
	if v, ok := env.LookupEnv("NO_COLOR"); ok && v != "" {
		return Style{}
	}
	if v, _ := env.LookupEnv("TERM"); v == "dumb" {
		return Style{}
	}
	f, ok := w.(*os.File)
	return Style{on: ok && isTerminal(f)}
}

// On reports whether the style colours.
func (s Style) On() bool { return s.on }

func (s Style) sgr(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Bold is text in bold.
func (s Style) Bold(text string) string { return s.sgr("1", text) }

// Dim is text in a faint colour.
func (s Style) Dim(text string) string { return s.sgr("2", text) }

// Red is text in bold red (errors, failures).
func (s Style) Red(text string) string { return s.sgr("1;31", text) }

// Yellow is text in yellow (warnings).
func (s Style) Yellow(text string) string { return s.sgr("33", text) }

// Green is text in green (success, healthy).
func (s Style) Green(text string) string { return s.sgr("32", text) }

// Status colours a cell that tells a state: true, "healthy", "ok", "up" green; false,
// "unhealthy", "down", "error…" red; anything else unchanged.
func (s Style) Status(text string) string {
	switch t := strings.ToLower(text); {
	case t == "true" || t == "healthy" || t == "ok" || t == "up" || t == "connect ok":
		return s.Green(text)
	case t == "false" || t == "unhealthy" || t == "down" || t == "ejected" || strings.HasPrefix(t, "error"):
		return s.Red(text)
	}
	return text
}

// Diagnostic renders d as Diagnostic.String does, with the kind in colour (errors red,
// warnings yellow) and the path in bold.
func (s Style) Diagnostic(d config.Diagnostic) string {
	if !s.on {
		return d.String()
	}
	kind := s.Red("error")
	if d.Warning {
		kind = s.Yellow("warning")
	}
	prefix := ""
	if d.File != "" {
		prefix = d.File + ": "
	}
	if d.Path == "" {
		return prefix + kind + ": " + d.Message
	}
	return prefix + kind + " at " + s.Bold(d.Path) + ": " + d.Message
}

// Table is a table of aligned columns, written on Flush: the header in bold on a terminal,
// columns two spaces apart. A cell's colour (Row's paint) does not count toward its width.
type Table struct {
	w      io.Writer
	style  Style
	header []string
	rows   [][]string
	paint  [][]func(string) string
}

// NewTable starts a table written to w (one of env's streams) with the header's columns.
func NewTable(env *Env, w io.Writer, header ...string) *Table {
	return &Table{w: w, style: StyleFor(env, w), header: header}
}

// Style returns the style the table writes with.
func (t *Table) Style() Style { return t.style }

// Row adds a row of cells (fmt.Sprint of each).
func (t *Table) Row(cells ...any) { t.PaintedRow(nil, cells...) }

// PaintedRow adds a row whose cell i is coloured by paint[i] when that is not nil (Style
// methods such as Style.Status).
func (t *Table) PaintedRow(paint []func(string) string, cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, row)
	t.paint = append(t.paint, paint)
}

// Flush writes the table.
func (t *Table) Flush() error {
	var widths []int
	measure := func(row []string) {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	if len(t.header) > 0 {
		measure(t.header)
	}
	for _, r := range t.rows {
		measure(r)
	}
	var b strings.Builder
	line := func(row []string, paint func(i int, s string) string) {
		for i, c := range row {
			cell := paint(i, c)
			if i < len(row)-1 {
				cell += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2)
			}
			b.WriteString(cell)
		}
		b.WriteByte('\n')
	}
	if len(t.header) > 0 {
		line(t.header, func(_ int, s string) string { return t.style.Bold(s) })
	}
	for n, r := range t.rows {
		paint := t.paint[n]
		line(r, func(i int, s string) string {
			if i < len(paint) && paint[i] != nil {
				return paint[i](s)
			}
			return s
		})
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}
