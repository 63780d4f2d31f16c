package server_test

import (
	"testing"

	"github.com/conduitproxy/conduit/core/testtool"
)

// tool finds a pinned external test tool: in $CONDUIT_TOOLS_BIN or
// $HOME/.cache/conduit-tools/bin (where core/server/testdata/install-conformance-tools.sh
// puts it), else on PATH. A missing tool skips the test locally and fails it when CI=true.
func tool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Find(t, name, "core/server/testdata/install-conformance-tools.sh")
}
