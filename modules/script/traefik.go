package script

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/go-viper/mapstructure/v2"
	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/conduitproxy/conduit/core"
)

// manifestName is the file that marks a Traefik plugin's directory.
const manifestName = ".traefik.yml"

// Manifest is the part of a Traefik plugin's .traefik.yml the loader reads.
type Manifest struct {
	DisplayName string `yaml:"displayName"`
	Type        string `yaml:"type"`
	Import      string `yaml:"import"`
	BasePkg     string `yaml:"basePkg"`
	Runtime     string `yaml:"runtime"`
	UseUnsafe   bool   `yaml:"useUnsafe"`
}

// ReadManifest reads and checks dir/.traefik.yml: a yaegi middleware plugin with an import
// path. It returns the manifest and the GOPATH the plugin lives in (dir is
// GOPATH/src/<import>, as in Traefik's plugins-local/src/<module path>).
func ReadManifest(dir string) (*Manifest, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, "", fmt.Errorf("not a Traefik plugin directory: %w", err)
	}
	var m Manifest
	if err := yamlv3.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("%s: %w", manifestName, err)
	}
	switch {
	case m.Import == "":
		return nil, "", fmt.Errorf("%s: import is required (the plugin's module path)", manifestName)
	case m.Type != "" && m.Type != "middleware":
		return nil, "", fmt.Errorf("%s: type %q: only middleware plugins run here", manifestName, m.Type)
	case m.Runtime != "" && m.Runtime != "yaegi":
		return nil, "", fmt.Errorf("%s: runtime %q: this loader runs yaegi plugins (a WASM plugin is a middleware entry of type wasm)", manifestName, m.Runtime)
	case m.UseUnsafe:
		return nil, "", fmt.Errorf("%s: useUnsafe: plugins that need package unsafe or syscall do not run here", manifestName)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	suffix := filepath.Join("src", filepath.FromSlash(m.Import))
	if !strings.HasSuffix(abs, string(filepath.Separator)+suffix) {
		return nil, "", fmt.Errorf("the plugin directory must be <GOPATH>/src/%s (Traefik's plugins-local layout), is %s", m.Import, abs)
	}
	return &m, strings.TrimSuffix(abs, string(filepath.Separator)+suffix), nil
}

// basePkg is the package name the plugin's symbols are reached by: the manifest's basePkg,
// or the last element of its import path with dashes as underscores (as Traefik does).
func (m *Manifest) basePkg() string {
	if m.BasePkg != "" {
		return m.BasePkg
	}
	return strings.ReplaceAll(path.Base(m.Import), "-", "_")
}

// compilePlugin imports the plugin from its GOPATH and looks up New and CreateConfig.
func compilePlugin(m *Manifest, goPath string, unrestrictedStd bool, out scriptOutput) (p *program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("load plugin: %v", r)
		}
	}()
	sources, err := pluginSources(goPath) // its go statements guarded (goguard.go)
	if err != nil {
		return nil, fmt.Errorf("read the plugin: %w", err)
	}
	i, err := newInterpreter(".", sources, unrestrictedStd, nil, out) // a plugin's packages may import any
	if err != nil {
		return nil, err
	}
	if _, err := i.Eval("import " + strconv.Quote(m.Import)); err != nil {
		return nil, errors.New(pluginPaths(cleanCompileError(err).Error(), goPath))
	}
	p = &program{i: i, pkg: m.basePkg()}
	p.lookup("New", "CreateConfig")
	return p, nil
}

// loadPlugin loads a Traefik plugin and builds its handler: CreateConfig(), the entry's
// config decoded into it weakly typed (as Traefik does), then New(ctx, next, cfg, name).
func (e *entry) loadPlugin(ctx *core.SiteContext, pathAt string, cfg *Entry) bool {
	m, goPath, err := ReadManifest(cfg.Path)
	if err != nil {
		ctx.Errorf(pathAt, "%v", err)
		return false
	}
	hash, err := dirHash(goPath, func(name string) bool {
		return strings.HasSuffix(name, ".go") || name == manifestName || name == "go.mod"
	})
	if err != nil {
		ctx.Errorf(pathAt, "cannot read the plugin: %v", err)
		return false
	}
	if src, err := readSource(filepath.Join(goPath, "src", filepath.FromSlash(m.Import))); err == nil {
		warnProcessHazards(ctx, pathAt, src.data, "plugin")
	}
	out := scriptOutput{log: ctx.Logger, script: m.Import}
	key := fmt.Sprintf("traefik:%s:%s:%s:%t", goPath, m.Import, hash, cfg.Unrestricted)
	p, err := sharedProgram(ctx, key, func() (*program, error) { return compilePlugin(m, goPath, cfg.Unrestricted, out) })
	if err != nil {
		ctx.Errorf(pathAt, "%v", err)
		return false
	}
	e.prog = p
	for _, name := range []string{"New", "CreateConfig"} {
		if !p.has(name) {
			ctx.Errorf(pathAt, "plugin %s has no %s function (a Traefik middleware plugin defines CreateConfig() *Config and New(ctx, next, config, name) (http.Handler, error))", m.Import, name)
			return false
		}
	}
	h, err := newPluginHandler(ctx.Context, p, cfg.Config, e.next, e.name)
	if err != nil {
		ctx.Errorf(pathAt, "plugin %s: %v", m.Import, err)
		return false
	}
	e.handler = h
	return true
}

// newPluginHandler calls CreateConfig, decodes conf into its result and calls New.
func newPluginHandler(ctx context.Context, p *program, conf any, next http.Handler, name string) (h http.Handler, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("panicked: %v", r)
		}
	}()
	create, newFn := p.syms["CreateConfig"], p.syms["New"]
	if create.Type().NumIn() != 0 || create.Type().NumOut() != 1 {
		return nil, fmt.Errorf("CreateConfig must take no argument and return the config, is %s", create.Type())
	}
	vcfg := create.Call(nil)[0]
	if conf != nil {
		var pv reflect.Value
		target := vcfg.Interface()
		if vcfg.Kind() != reflect.Pointer {
			pv = reflect.New(vcfg.Type())
			pv.Elem().Set(vcfg)
			target = pv.Interface()
		}
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			DecodeHook:       mapstructure.StringToSliceHookFunc(","),
			WeaklyTypedInput: true,
			Result:           target,
		})
		if err != nil {
			return nil, err
		}
		if err := dec.Decode(conf); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if pv.IsValid() {
			vcfg = pv.Elem()
		}
	}
	nt := newFn.Type()
	if nt.NumIn() != 4 || nt.NumOut() != 2 {
		return nil, fmt.Errorf("New must be func(context.Context, http.Handler, *Config, string) (http.Handler, error), is %s", nt)
	}
	args := []reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), vcfg, reflect.ValueOf(name)}
	for i, a := range args {
		if !a.Type().AssignableTo(nt.In(i)) {
			return nil, fmt.Errorf("New's argument %d is %s; want %s", i+1, nt.In(i), a.Type())
		}
	}
	out := newFn.Call(args)
	if e, ok := out[1].Interface().(error); ok && e != nil {
		return nil, fmt.Errorf("New: %w", e)
	}
	h, ok := out[0].Interface().(http.Handler)
	if !ok || h == nil {
		return nil, fmt.Errorf("New returned no http.Handler")
	}
	return h, nil
}

// inMemorySrc matches a path of the in-memory GOPATH a plugin is compiled from
// (pluginSources) at the start of a word of yaegi's text.
var inMemorySrc = regexp.MustCompile(`(^|[\s"(])src/`)

// pluginPaths replaces the in-memory GOPATH's paths in yaegi's text with the plugin's
// GOPATH on disk.
func pluginPaths(text, goPath string) string {
	return inMemorySrc.ReplaceAllString(text, "${1}"+strings.ReplaceAll(filepath.Join(goPath, "src"), "$", "$$")+string(filepath.Separator))
}

// pluginSources reads a Traefik plugin's GOPATH (the Go files of every package under
// goPath/src, and go.mod and vendor/modules.txt files; links followed as walkFiles does) into
// memory with the go statements of each package guarded, for yaegi to import from (GoPath
// "."). Test files are left out: yaegi does not load them.
func pluginSources(goPath string) (fs.FS, error) {
	pkgs := map[string]map[string][]byte{} // directory (slash-separated, from goPath) → files
	err := walkFiles(filepath.Join(goPath, "src"), func(p, rel string) error {
		name := path.Base(rel)
		if !isGoSource(name) && name != "go.mod" && name != "modules.txt" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		dir := path.Join("src", path.Dir(rel))
		if pkgs[dir] == nil {
			pkgs[dir] = map[string][]byte{}
		}
		pkgs[dir][name] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	fsys := fstest.MapFS{}
	for dir, files := range pkgs {
		goFiles := map[string][]byte{}
		for name, b := range files {
			if strings.HasSuffix(name, ".go") {
				goFiles[name] = b
			} else {
				fsys[path.Join(dir, name)] = &fstest.MapFile{Data: b, Mode: 0o444}
			}
		}
		guardFiles(goFiles)
		for name, b := range goFiles {
			fsys[path.Join(dir, name)] = &fstest.MapFile{Data: b, Mode: 0o444}
		}
	}
	return fsys, nil
}
