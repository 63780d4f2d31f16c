package cli

import (
	"runtime/debug"
	"testing"
)

// TestVersionFromBuildInfo pins which version each kind of build reports.
func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "7b59737c0ffee1234567890abcdef01234567890"
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"tagged main module", debug.BuildInfo{Main: debug.Module{Path: coreModulePath, Version: "v1.4.0"}}, "v1.4.0"},
		{"pseudo-version", debug.BuildInfo{Main: debug.Module{Path: coreModulePath, Version: "v0.0.0-20261202072900-7b59737c0ffe+dirty"}}, "v0.0.0-20261202072900-7b59737c0ffe+dirty"},
		{"custom build depends on the core", debug.BuildInfo{Main: debug.Module{Path: "example.com/mybuild", Version: "(devel)"},
			Deps: []*debug.Module{{Path: coreModulePath, Version: "v1.3.2"}}}, "v1.3.2"},
		{"devel with a clean checkout", debug.BuildInfo{Main: debug.Module{Path: coreModulePath, Version: "(devel)"}, Settings: vcs(rev, "false")}, "7b59737c0ffe"},
		{"devel with local changes", debug.BuildInfo{Main: debug.Module{Path: coreModulePath, Version: "(devel)"}, Settings: vcs(rev, "true")}, "7b59737c0ffe-dirty"},
		{"devel without VCS", debug.BuildInfo{Main: debug.Module{Path: coreModulePath, Version: "(devel)"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionFromBuildInfo(&tc.bi); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
