package cli

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// version is set with -ldflags "-X github.com/conduitproxy/conduit/core/cli.version=v1.2.3"
// (the Makefile's build targets set it from `git describe --tags --always --dirty`,
// goreleaser from the release tag).
var version = ""

// Version returns the build's version: the ldflags value, else the version the build info
// records (see versionFromBuildInfo), else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := versionFromBuildInfo(bi); v != "" {
			return v
		}
	}
	return "devel"
}

// versionFromBuildInfo is the version a build info records: Conduit's module version when it
// is a dependency (a custom build by xbuild), else the main module's version (a tag or a
// pseudo-version stamped by `go build` in a checkout, `go install …@version`), else, for a
// "(devel)" main module, the VCS revision (12 hex digits, "-dirty" with uncommitted changes).
// It is "" when the build info records none of these.
func versionFromBuildInfo(bi *debug.BuildInfo) string {
	for _, dep := range bi.Deps {
		if dep.Path == coreModulePath && dep.Version != "" && dep.Version != "(devel)" {
			return dep.Version
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
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
