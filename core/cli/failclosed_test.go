package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/testtool"
)

// This test binary links no module at all, so it stands for a build without the jwt
// module (a minimal or custom build).

// TestValidateRefusesMissingGuard: `conduit validate` exits 1 on a jwtAuth block the binary
// cannot enforce, naming the path, the feature and how to get it.
func TestValidateRefusesMissingGuard(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	if err := os.WriteFile(cfg, []byte("port: 8080\njwtAuth:\n  secret: a-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "validate", "-c", cfg)
	want := "error at jwtAuth: jwtAuth restricts access but feature \"jwt\" is not compiled into this binary, so nothing would enforce it; " +
		"refusing to serve without it (bundle \"standard\" has it, or build one with `xbuild --features jwt`; see `conduit features`; " +
		"to drop the guard on purpose, list \"jwt\" in global.allowMissingFeatures)\n1 errors found.\n"
	if code != 1 || out != want {
		t.Fatalf("exit %d, stdout:\n%s\nwant exit 1 and:\n%s", code, out, want)
	}

	allowed := "global:\n  allowMissingFeatures: [jwt]\nsites:\n  - port: 8080\n    jwtAuth:\n      secret: a-secret\n"
	if err := os.WriteFile(cfg, []byte(allowed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "validate", "-c", cfg)
	wantWarn := "warning at sites[0].jwtAuth: jwtAuth restricts access but feature \"jwt\" is not compiled into this binary; " +
		"global.allowMissingFeatures lists \"jwt\", so site *:8080 serves WITHOUT this guard\n"
	if code != 0 || !strings.HasPrefix(out, "Config is valid") || errOut != wantWarn {
		t.Fatalf("allowed: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errOut, wantWarn)
	}
}

// TestServeRefusesMissingGuard: `conduit -c FILE` refuses to start on the same config; the
// port it would listen on stays closed.
func TestServeRefusesMissingGuard(t *testing.T) {
	port := testtool.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "port: %d\njwtAuth:\n  secret: a-secret\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "-c", cfg, "--bind", "127.0.0.1")
	if code != 1 || !strings.Contains(errOut, "error at jwtAuth: jwtAuth restricts access but feature \"jwt\" is not compiled into this binary") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Fatalf("port %d accepts connections after a refused start", port)
	}
}
