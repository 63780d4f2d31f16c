package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	yaml "go.yaml.in/yaml/v3"
)

// runFmt pretty-prints a config file in its own format: YAML keeps its comments and key order,
// JSON is re-indented with two spaces. --write rewrites the file in place (atomically).
func runFmt(env *Env, args []string) int {
	fs := newFlagSet(env, "fmt")
	var cf ConfigFlags
	cf.Register(fs)
	write := fs.Bool("write", false, "rewrite the file in place")
	SetUsage(fs, "[--write] [-c FILE | FILE]")
	if code, ok := cf.Parse(env, fs, args); !ok {
		return code
	}
	path, err := cf.Resolve(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	out, err := Format(data, config.FormatOf(path))
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", path, err)
		return 1
	}
	if !*write {
		_, _ = env.Stdout.Write(out)
		return 0
	}
	if bytes.Equal(out, data) {
		return 0
	}
	if err := core.WriteFileAtomic(path, out, 0o644); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	return 0
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
