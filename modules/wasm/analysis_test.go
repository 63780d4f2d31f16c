package wasm

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/testtool"
)

// analysisFixture is the path of a guest of testdata/analysis (its .wat source beside it).
func analysisFixture(name string) string { return filepath.Join("testdata", "analysis", name) }

// TestAnalyse checks the facts analyse finds in each WAT fixture of testdata/analysis and in
// the benchmark rows' guests, and that the committed .wasm files are what wat2wasm makes of
// their sources.
func TestAnalyse(t *testing.T) {
	for _, tc := range []struct {
		file   string
		pure   bool
		consts map[string]uint64
	}{
		{"pure.wasm", true, map[string]uint64{"on_request": 0, "noop": 0}},
		{"counter.wasm", true, map[string]uint64{}},
		{"store.wasm", false, map[string]uint64{"on_request": 0}},
		{"grow.wasm", false, map[string]uint64{}},
		{"fill.wasm", false, map[string]uint64{}},
		{"datadrop.wasm", false, map[string]uint64{}},
		{"simd.wasm", false, map[string]uint64{}},
		{"atomic.wasm", false, map[string]uint64{}},
		{"getter.wasm", false, map[string]uint64{}},
		{"wasi.wasm", false, map[string]uint64{"on_request": 0}},
		{"importedmemory.wasm", false, map[string]uint64{"on_request": 0}},
		{"consts.wasm", true, map[string]uint64{"empty": 0, "locals": 0, "minus5": 0xfffffffb,
			"i64max": 0x7fffffffffffffff, "minus1": 0xffffffffffffffff}},
		{"../../../../plugins/wasm/wat/header.wasm", true, map[string]uint64{"on_request": 0}},
		{"../../../../plugins/wasm/wat/hwheader.wasm", false, map[string]uint64{"handle_response": 0}},
		{"../../../../plugins/wasm/wat/probe.wasm", false, map[string]uint64{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			code, err := os.ReadFile(analysisFixture(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			f := analyse(code)
			if f.pureMemory != tc.pure {
				t.Errorf("pureMemory %v, want %v", f.pureMemory, tc.pure)
			}
			if !maps.Equal(f.consts, tc.consts) {
				t.Errorf("consts %v, want %v", f.consts, tc.consts)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		code, err := os.ReadFile(analysisFixture("pure.wasm"))
		if err != nil {
			t.Fatal(err)
		}
		// A prefix that ends inside a section assumes nothing; one that ends between two
		// sections is a smaller module: it never has a constant the whole one lacks.
		whole := analyse(code)
		for n := range len(code) {
			for name, v := range analyse(code[:n]).consts {
				if w, ok := whole.consts[name]; !ok || w != v {
					t.Fatalf("%d of %d bytes: constant %s = %d, which the whole module does not have", n, len(code), name, v)
				}
			}
		}
	})
	t.Run("wat2wasm", func(t *testing.T) {
		wat2wasm := testtool.Find(t, "wat2wasm", ".ci/deps.sh (Debian wabt)")
		sources, err := filepath.Glob(analysisFixture("*.wat"))
		if err != nil || len(sources) == 0 {
			t.Fatalf("no sources: %v", err)
		}
		out := t.TempDir()
		for _, src := range sources {
			name := strings.TrimSuffix(filepath.Base(src), ".wat") + ".wasm"
			args := []string{src, "-o", filepath.Join(out, name)}
			if name == "atomic.wasm" {
				args = append(args, "--enable-threads")
			}
			if b, err := exec.Command(wat2wasm, args...).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm %s: %v\n%s", src, err, b)
			}
			got, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(analysisFixture(name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what wat2wasm makes of %s: rebuild it", name, src)
			}
		}
	})
}

// TestResetWithoutMemoryCopy checks that a guest that cannot write its memory gets a
// snapshot without one, and that its globals are still restored between requests: the
// counter.wat guest answers 500 on any call but its instance's first.
func TestResetWithoutMemoryCopy(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		answers []int
	}{
		{instancesReset, []int{http.StatusNoContent, http.StatusNoContent, http.StatusNoContent}},
		{instancesReuse, []int{http.StatusNoContent, http.StatusInternalServerError, http.StatusInternalServerError}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			mw := testEntry(t, "../../modules/wasm/"+analysisFixture("counter.wasm"), tc.mode, DefaultTimeout)
			e := mw.(*conduitEntry)
			if e.snap != nil && e.snap.memory != nil {
				t.Fatal("the snapshot copies the memory of a guest that cannot write it")
			}
			h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			for i, want := range tc.answers {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
				if w.Code != want {
					t.Fatalf("request %d: %d, want %d", i, w.Code, want)
				}
			}
		})
	}
	mw := testEntry(t, "wat/probe.wasm", instancesReset, DefaultTimeout)
	if e := mw.(*conduitEntry); e.snap.memory == nil {
		t.Fatal("the snapshot of probe.wasm, which writes its memory, has no memory")
	}
}

// TestConstantExportNotCalled checks that an entry whose export is a constant answers with
// it without using an instance, and that an http-wasm guest whose handle_response is empty
// is found so (its instance goes back to the pool before the next handler) and still works.
func TestConstantExportNotCalled(t *testing.T) {
	mw := testEntry(t, "../../modules/wasm/"+analysisFixture("store.wasm"), instancesReset, DefaultTimeout)
	e := mw.(*conduitEntry)
	if !e.constant || e.rc != 0 {
		t.Fatalf("constant %v rc %d, want on_request's constant 0", e.constant, e.rc)
	}
	idle := <-e.pool
	e.pool <- idle
	passed := false
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { passed = true }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !passed || len(e.pool) != 1 || <-e.pool != idle {
		t.Fatalf("passed %v, %d idle: want the request passed and the idle instance untouched", passed, len(e.pool))
	}

	hw := testEntry(t, "wat/hwheader.wasm", "", DefaultTimeout).(*httpWasmEntry)
	if !hw.noResponse {
		t.Fatal("hwheader.wasm's empty handle_response was not found")
	}
	var seen string
	h = hw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("X-Wasm")
		w.WriteHeader(http.StatusNoContent)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if seen != "1" || w.Code != http.StatusNoContent {
		t.Fatalf("X-Wasm %q, status %d: want the header set and the next handler's answer", seen, w.Code)
	}
	if hp := testEntry(t, "wat/hwprobe.wasm", "", DefaultTimeout).(*httpWasmEntry); hp.noResponse {
		t.Fatal("hwprobe.wasm's handle_response does something, but was taken for empty")
	}
}

// TestHeaderNameCache checks that the entry remembers only the names it accepted, so a
// refused name (a framing field, an invalid token) is refused every time, and that the
// cache stops growing at maxNames.
func TestHeaderNameCache(t *testing.T) {
	e := testEntry(t, "wat/header.wasm", "", DefaultTimeout).(*conduitEntry)
	c := &call{e: e}
	for range 2 {
		if canon, ok := c.headerName("test", []byte("x-wasm")); !ok || canon != "X-Wasm" {
			t.Fatalf("x-wasm: %q %v, want X-Wasm", canon, ok)
		}
		for _, bad := range []string{"content-length", "Host", "bad name", ""} {
			if canon, ok := c.headerName("test", []byte(bad)); ok {
				t.Fatalf("%q accepted as %q", bad, canon)
			}
		}
	}
	if n := len(*e.names.Load()); n != 1 {
		t.Fatalf("%d names remembered, want 1", n)
	}
	for i := range 2 * maxNames {
		if _, ok := c.headerName("test", []byte("x-n"+strings.Repeat("a", i))); !ok {
			t.Fatal("a valid name was refused")
		}
	}
	if n := len(*e.names.Load()); n != maxNames {
		t.Fatalf("%d names remembered, want the bound %d", n, maxNames)
	}
}

// TestBufferFreeNamesAreHostFunctions: every conduit host function the analysis trusts not
// to write guest memory is one the host defines (a misspelt name would be trusted for no
// function, and the real one treated as writing; a removed one should leave the list).
func TestBufferFreeNamesAreHostFunctions(t *testing.T) {
	for name := range conduitBufferFree {
		if _, ok := hostFuncs[name]; !ok {
			t.Errorf("conduitBufferFree lists %q, which hostFuncs does not define", name)
		}
	}
}
