package wasm_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/testtool"
	"github.com/tetratelabs/wazero"
)

// TestGuestsBuildToFixtures rebuilds every guest of plugins/wasm with its Makefile into a
// temporary directory and compares the result with the committed .wasm file, so a source
// change without a rebuilt fixture (or the reverse) fails. WAT guests must match byte for
// byte; Rust and Go guests too when the compiler is the one that built the fixture
// (rust/guard.wasm.rustc, go/go-version.txt), otherwise they must import and export the
// same functions. A missing toolchain skips locally and fails under CI=true.
func TestGuestsBuildToFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the guests")
	}
	mk := testtool.Find(t, "make", ".ci/deps.sh")
	wat2wasm := testtool.Find(t, "wat2wasm", ".ci/deps.sh (Debian wabt)")
	rustc := wasmRustc(t)
	dir := fixture("")
	out := t.TempDir()
	cmd := exec.Command(mk, "-s", "-C", dir, "OUT="+out, "WAT2WASM="+wat2wasm, "RUSTC="+rustc)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make -C %s: %v\n%s", dir, err, b)
	}
	rustVersion := commandOutput(t, rustc, "--version")
	goVersion := strings.Fields(commandOutput(t, "go", "version"))[2]
	for _, tc := range []struct {
		file, versionFile, version string
	}{
		{"wat/probe.wasm", "", ""},
		{"wat/header.wasm", "", ""},
		{"wat/hwprobe.wasm", "", ""},
		{"wat/hwheader.wasm", "", ""},
		{"rust/guard.wasm", "rust/guard.wasm.rustc", rustVersion},
		{"go/httpheader.wasm", "go/go-version.txt", goVersion},
		{"go/conduitpath.wasm", "go/go-version.txt", goVersion},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(out, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(got, want) {
				return
			}
			if tc.versionFile != "" {
				rec, err := os.ReadFile(filepath.Join(dir, tc.versionFile))
				if err != nil {
					t.Fatal(err)
				}
				if strings.TrimSpace(string(rec)) != tc.version {
					t.Logf("built with %s, the fixture with %s: comparing imports and exports only", tc.version, strings.TrimSpace(string(rec)))
					if a, b := surface(t, got), surface(t, want); !slices.Equal(a, b) {
						t.Fatalf("the source no longer builds to the fixture's functions:\nbuilt   %q\ncommitted %q", a, b)
					}
					return
				}
			}
			t.Fatalf("%s differs from what its source builds to (%d vs %d bytes): run make wasm-guests and commit the result", tc.file, len(got), len(want))
		})
	}
}

// wasmRustc finds a rustc that has the wasm32-unknown-unknown standard library: $RUSTC,
// Debian's /usr/bin/rustc, or the one on PATH.
func wasmRustc(t *testing.T) string {
	t.Helper()
	var cands []string
	if r := os.Getenv("RUSTC"); r != "" {
		cands = append(cands, r)
	}
	cands = append(cands, "/usr/bin/rustc")
	if p, err := exec.LookPath("rustc"); err == nil {
		cands = append(cands, p)
	}
	for _, c := range cands {
		out, err := exec.Command(c, "--print", "sysroot").Output()
		if err != nil {
			continue
		}
		if st, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "lib", "rustlib", "wasm32-unknown-unknown")); err == nil && st.IsDir() {
			return c
		}
	}
	msg := "no rustc with the wasm32-unknown-unknown target; run .ci/deps.sh (Debian rustc and libstd-rust-dev-wasm32)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func commandOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return strings.TrimSpace(string(out))
}

// surface lists a module's imported and exported functions.
func surface(t *testing.T, code []byte) []string {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range cm.ImportedFunctions() {
		m, n, _ := d.Import()
		out = append(out, "import "+m+"."+n)
	}
	for n := range cm.ExportedFunctions() {
		out = append(out, "export "+n)
	}
	slices.Sort(out)
	return out
}
