package xbuild

import (
	"archive/zip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeModule is one module version served by a file:// GOPROXY.
type fakeModule struct {
	path, version string
	files         map[string]string // relative name → content; must include go.mod
}

// writeFakeProxy lays out a GOPROXY directory (module/@v/{list,V.info,V.mod,V.zip}) and
// returns an environment that resolves modules only from it, with a private module cache, so
// the tests need no network and leave the shared cache alone.
func writeFakeProxy(t *testing.T, mods ...fakeModule) []string {
	t.Helper()
	root := t.TempDir()
	proxy := filepath.Join(root, "proxy")
	versions := map[string][]string{}
	for _, m := range mods {
		dir := filepath.Join(proxy, filepath.FromSlash(m.path), "@v")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		versions[m.path] = append(versions[m.path], m.version)
		write := func(name, body string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(m.version+".info", `{"Version":"`+m.version+`","Time":"2026-01-01T00:00:00Z"}`)
		write(m.version+".mod", m.files["go.mod"])
		zf, err := os.Create(filepath.Join(dir, m.version+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(zf)
		for name, body := range m.files {
			w, err := zw.Create(m.path + "@" + m.version + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := zf.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for p, vs := range versions {
		list := filepath.Join(proxy, filepath.FromSlash(p), "@v", "list")
		if err := os.WriteFile(list, []byte(strings.Join(vs, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	proxyURL := "file://" + filepath.ToSlash(proxy)
	if runtime.GOOS == "windows" {
		proxyURL = "file:///" + filepath.ToSlash(proxy)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOPROXY", "GOFLAGS", "GOMODCACHE", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOTOOLCHAIN", "GOOS", "GOARCH":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"GOPROXY="+proxyURL, "GOSUMDB=off", "GOTOOLCHAIN=local",
		"GOMODCACHE="+filepath.Join(root, "modcache"), "GOFLAGS=-modcacherw",
	)
}

// fakeCore is a stand-in core module: bundles with no features, and a core/cli whose Main
// answers `version` and `features --json` with an empty module list.
func fakeCore(path, version string) fakeModule {
	return fakeModule{path: path, version: version, files: map[string]string{
		"go.mod":                              "module " + path + "\n\ngo 1.21\n",
		"modules/bundle/minimal/minimal.go":   "package minimal\n",
		"modules/bundle/standard/standard.go": "package standard\n",
		"modules/bundle/full/full.go":         "package full\n",
		"core/cli/cli.go": `package cli

import (
	"fmt"
	"os"
)

func Main() {
	if len(os.Args) > 1 && os.Args[1] == "features" {
		fmt.Println(` + "`" + `{"modules": []}` + "`" + `)
		return
	}
	fmt.Println("fake core ` + version + `")
}
`,
	}}
}
