package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	yaml "go.yaml.in/yaml/v3"
)

// runFmt pretty-prints a config file in its own format: YAML keeps its comments and key order,
// JSON is re-indented with two spaces. --write rewrites the file in place (atomically). Given
// several files or a directory it needs --write and formats each file in place (stdout
// takes one document); it never merges them.
func runFmt(env *Env, args []string) int {
	fs := newFlagSet(env, "fmt")
	var cf ConfigFlags
	cf.RegisterFiles(fs)
	write := fs.Bool("write", false, "rewrite the file in place (with several files or a directory: each of them)")
	SetUsage(fs, "[--write] [-c FILE | FILE]")
	if code, ok := cf.Parse(env, fs, args); !ok {
		return code
	}
	paths, err := cf.ResolveAll(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	files, err := config.ExpandPaths(paths)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	if len(files) > 1 && !*write {
		fmt.Fprintf(env.Stderr, "conduit fmt: %d config files (%s): stdout takes one; give --write to format each in place, or name one file\n", len(files), strings.Join(files, ", "))
		return 1
	}
	code := 0
	for _, path := range files {
		if !fmtFile(env, path, *write) {
			code = 1
		}
	}
	return code
}

// fmtFile formats one file to stdout, or in place with write; errors name the file.
func fmtFile(env *Env, path string, write bool) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return false
	}
	out, err := Format(data, config.FormatOf(path))
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", path, err)
		return false
	}
	if !write {
		_, _ = env.Stdout.Write(out)
		return true
	}
	if bytes.Equal(out, data) {
		return true
	}
	if err := core.WriteFileAtomic(path, out, 0o644); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return false
	}
	return true
}

// Format pretty-prints a config document without changing its meaning.
func Format(data []byte, f config.Format) ([]byte, error) {
	if f == config.FormatJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, data, "", "  "); err != nil {
			return nil, config.JSONSyntaxError(data, data, err)
		}
		buf = *bytes.NewBuffer(bytes.TrimSpace(buf.Bytes()))
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, config.YAMLSyntaxError(data, err)
	}
	if node.Kind == 0 {
		return []byte{}, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
