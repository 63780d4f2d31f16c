package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestConfigFlagsOverrides: the CONDUIT_SET_* and CONDUIT_UNSET_* variables apply first,
// then --set and --unset in command-line order; a bad --unset is refused when parsed, and a
// removal of a key the config does not have fails the load, naming the path.
func TestConfigFlagsOverrides(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(file, []byte("port: 8080\nstatic: .\nrateLimit: { windowSecs: 1, limit: 5 }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    map[string]any // the site's keys after loading; nil when an error is expected
		err     string
	}{
		{"unset then set", []string{"--unset", "sites[0].rateLimit", "--set", "sites[0].rateLimit.limit=7"}, nil,
			map[string]any{"port": 8080, "static": ".", "rateLimit": map[string]any{"limit": 7}}, ""},
		{"set then unset", []string{"--set", "sites[0].rateLimit.limit=7", "--unset", "sites[0].rateLimit"}, nil,
			map[string]any{"port": 8080, "static": "."}, ""},
		{"environment first", []string{"--set", "sites[0].static=./www"}, []string{"CONDUIT_UNSET_S=sites[0].static", "CONDUIT_UNSET_R=sites[0].rateLimit"},
			map[string]any{"port": 8080, "static": "./www"}, ""},
		{"missing key", []string{"--unset", "sites[0].proxy"}, nil, nil, `--unset sites[0].proxy: the site has no key "proxy": nothing to unset`},
		{"missing key from the environment", nil, []string{"CONDUIT_UNSET_P=sites[0].proxy"}, nil, `CONDUIT_UNSET_P sites[0].proxy: the site has no key "proxy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Dir: dir, Environ: func() []string { return tt.environ }}
			var cf ConfigFlags
			fs := newFlagSet(env, "validate")
			cf.Register(fs)
			if code, ok := cf.Parse(env, fs, append([]string{"-c", file}, tt.args...)); !ok {
				t.Fatalf("parse: code %d: %s", code, stderr.String())
			}
			doc, err := cf.Load(env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for k, v := range doc.Sites[0] {
				got[k] = v
			}
			if !reflect.DeepEqual(normalizeMaps(got), tt.want) {
				t.Fatalf("site %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestUnsetFlagRefusesBadPaths: --unset is checked when parsed.
func TestUnsetFlagRefusesBadPaths(t *testing.T) {
	for _, arg := range []string{"global.otlp=1", "sites[0]", "port", "sites[0].routes[1]"} {
		var stderr bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}
		var cf ConfigFlags
		fs := newFlagSet(env, "validate")
		cf.Register(fs)
		if _, ok := cf.Parse(env, fs, []string{"--unset", arg}); ok {
			t.Errorf("--unset %s parsed", arg)
		} else if !strings.Contains(stderr.String(), "--unset") {
			t.Errorf("--unset %s: message %q", arg, stderr.String())
		}
	}
}

// normalizeMaps turns the config's map[string]Node values into map[string]any, for
// comparison with literals.
func normalizeMaps(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalizeMaps(e)
		}
		return out
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Map {
			out := map[string]any{}
			for _, k := range rv.MapKeys() {
				out[k.String()] = normalizeMaps(rv.MapIndex(k).Interface())
			}
			return out
		}
		return v
	}
}
