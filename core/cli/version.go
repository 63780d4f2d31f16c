package cli

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// version is set with -ldflags "-X github.com/conduitproxy/conduit/core/cli.version=v1.2.3".
var version = ""

// Version returns the build's version: the ldflags value, else the main module's version
// from the build info, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == coreModulePath && dep.Version != "" && dep.Version != "(devel)" {
				return dep.Version
			}
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}

const coreModulePath = "github.com/conduitproxy/conduit"

func goVersion() string { return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH }

// moduleVersion returns the Go module version a third-party Conduit module was built from,
// or "" for modules of Conduit's own Go module.
func moduleVersion(m *core.Module) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || m.Package == "" || strings.HasPrefix(m.Package, coreModulePath+"/") {
		return ""
	}
	best := ""
	version := ""
	for _, dep := range bi.Deps {
		if (m.Package == dep.Path || strings.HasPrefix(m.Package, dep.Path+"/")) && len(dep.Path) > len(best) {
			best, version = dep.Path, dep.Version
			if dep.Replace != nil {
				version = dep.Replace.Version
				if version == "" || version == "(devel)" {
					version = "=> " + dep.Replace.Path
				}
			}
		}
	}
	if best == "" {
		return ""
	}
	return best + "@" + version
}
