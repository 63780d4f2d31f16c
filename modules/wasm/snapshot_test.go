package wasm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
)

func guest(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "plugins", "wasm", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExportGlobals checks the rewrite on the example guests: the result compiles, exports
// what the original exported plus one export per mutable global, and a module without
// mutable globals is returned as it was.
func TestExportGlobals(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, tc := range []struct {
		file  string
		names []string
	}{
		{"wat/probe.wasm", []string{"conduit:global:0"}},
		{"wat/header.wasm", nil},
		{"rust/guard.wasm", []string{"conduit:global:0"}}, // the stack pointer
	} {
		t.Run(tc.file, func(t *testing.T) {
			code := guest(t, tc.file)
			out, names, err := exportGlobals(code)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, tc.names) {
				t.Fatalf("names %q, want %q", names, tc.names)
			}
			if len(names) == 0 && &out[0] != &code[0] {
				t.Fatal("a module without mutable globals was copied")
			}
			before, err := rt.CompileModule(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			after, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("the rewritten module does not compile: %v", err)
			}
			for n := range before.ExportedFunctions() {
				if _, ok := after.ExportedFunctions()[n]; !ok {
					t.Errorf("export %s lost", n)
				}
			}
		})
	}
}

// FuzzExportGlobals feeds arbitrary bytes to the rewrite: it never panics, and whatever it
// accepts and changes is still a module whose sections parse.
func FuzzExportGlobals(f *testing.F) {
	for _, n := range []string{"wat/probe.wasm", "wat/header.wasm", "wat/hwprobe.wasm", "rust/guard.wasm"} {
		f.Add(guest(f, n))
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, code []byte) {
		out, names, err := exportGlobals(code)
		if err != nil || len(names) == 0 {
			return
		}
		again, more, err := exportGlobals(out)
		if err != nil {
			t.Fatalf("the rewritten module does not parse: %v", err)
		}
		if !slices.Equal(names, more) || len(again) <= len(out) {
			t.Fatalf("rewriting twice: names %q then %q", names, more)
		}
	})
}
