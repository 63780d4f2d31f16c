package wasm_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/wasm"
)

// fixture is the path of a committed guest under plugins/wasm.
func fixture(name string) string { return filepath.Join("..", "..", "plugins", "wasm", name) }

// upstream answers with what the guests may have changed: the request's X-Added and X-Drop
// in X-Seen-Added and X-Seen-Drop, X-Wasm-Req in X-Seen-Wasm-Req, the response op X-Rop from the request's X-Rop-Up, and
// the headers the response-phase ops look at. Its body is "upstream body".
func upstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Seen-Added", r.Header.Get("X-Added"))
		h.Set("X-Seen-Drop", r.Header.Get("X-Drop"))
		h.Set("X-Seen-Wasm-Req", r.Header.Get("X-Wasm-Req"))
		if op := r.Header.Get("X-Rop-Up"); op != "" {
			h.Set("X-Rop", op)
		}
		h.Set("X-Up", "upval")
		h.Set("X-Remove-Me", "1")
		h.Set("Etag", `"abc"`)
		status := http.StatusOK
		if s := r.URL.Query().Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		if status == http.StatusNoContent || status == http.StatusNotModified {
			w.WriteHeader(status)
			return
		}
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "upstream body")
	}))
	t.Cleanup(up.Close)
	return up
}

// site is a config of one site on port 8080 proxying / to up with the given middleware
// entries (YAML flow objects), without the on-disk compilation cache; extra site keys may
// follow as lines indented by four spaces.
func site(up string, entries ...string) string {
	return "global:\n  wasm: {diskCache: false}\nsites:\n  - port: 8080\n    middleware:\n" +
		"      - " + strings.Join(entries, "\n      - ") + "\n    proxy:\n      /: \"" + up + "\"\n"
}

func probe(extra string) string {
	e := `{type: wasm, path: "` + fixture("wat/probe.wasm") + `"`
	if extra != "" {
		e += ", " + extra
	}
	return e + "}"
}

// TestConduitABIRequestPhase drives every request-phase host function of the conduit ABI
// through probe.wat.
func TestConduitABIRequestPhase(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, site(up.URL, probe(`config: {greeting: hi, n: 2}`)))
	base := srv.URL(8080)
	runCases(t, base, []reqCase{
		{name: "no op continues", path: "/x", status: 200, body: "upstream body"},
		{name: "method", path: "/x", hdr: []string{"X-Op", "M"}, status: 200, body: "GET"},
		{name: "path", path: "/a/b%20c?q=1", hdr: []string{"X-Op", "P"}, status: 200, body: "/a/b%20c"},
		{name: "query", path: "/a?q=1&r=2", hdr: []string{"X-Op", "Q"}, status: 200, body: "q=1&r=2"},
		{name: "query absent", path: "/a", hdr: []string{"X-Op", "Q"}, status: 200, body: "-1"},
		{name: "uri", path: "/a/b?q=1", hdr: []string{"X-Op", "U"}, status: 200, body: "/a/b?q=1"},
		{name: "uri without query", path: "/a/b", hdr: []string{"X-Op", "U"}, status: 200, body: "/a/b"},
		{name: "client ip", path: "/", hdr: []string{"X-Op", "I"}, status: 200, body: "127.0.0.1"},
		{name: "request id received", path: "/", hdr: []string{"X-Op", "R", "X-Request-Id", "rid-123"}, status: 200, body: "rid-123"},
		{name: "header case-insensitive", path: "/", hdr: []string{"X-Op", "H", "X-Arg", "x-CUSTOM", "X-Custom", "v1"}, status: 200, body: "v1"},
		{name: "repeated header: first value", path: "/", hdr: []string{"X-Op", "H", "X-Arg", "x-multi", "X-Multi", "one", "X-Multi", "two"}, status: 200, body: "one"},
		{name: "host header", path: "/", hdr: []string{"X-Op", "H", "X-Arg", "host", "Host", "example.test"}, status: 200, body: "example.test"},
		{name: "header absent", path: "/", hdr: []string{"X-Op", "H", "X-Arg", "x-nope"}, status: 200, body: "-1"},
		{name: "header count", path: "/", hdr: []string{"X-Op", "C", "X-Multi", "a", "X-Multi", "b"}, status: 200,
			// host, user-agent, x-op, x-multi, and the x-request-id Conduit adds
			body: "5"},
		{name: "header names", path: "/", hdr: []string{"X-Op", "N", "X-Zed", "1"}, status: 200, body: "host\nuser-agent\nx-op\nx-request-id\nx-zed"},
		{name: "plugin config", path: "/", hdr: []string{"X-Op", "G"}, status: 200, body: `{"greeting":"hi","n":2}`},
		{name: "truncated read", path: "/abcdef", hdr: []string{"X-Op", "T", "X-Arg", "3"}, status: 200, body: "/ab"},
		{name: "zero-length buffer", path: "/abcdef", hdr: []string{"X-Op", "T", "X-Arg", "0"}, status: 200, body: ""},
		{name: "set and remove request headers", path: "/", hdr: []string{"X-Op", "S", "X-Arg", "added", "X-Drop", "gone"}, status: 200,
			body: "upstream body", wantHeader: map[string]string{"X-Seen-Added": "added", "X-Seen-Drop": ""}},
		{name: "abort with status, header and body", path: "/", hdr: []string{"X-Op", "A", "X-Arg", "403"}, status: 403, body: "denied",
			wantHeader: map[string]string{"X-Abort": "yes", "X-Seen-Added": ""}},
		{name: "status clamped up to 100 then 1xx answered 500", path: "/", hdr: []string{"X-Op", "A", "X-Arg", "42"}, status: 500, body: "denied"},
		{name: "status clamped down to 999", path: "/", hdr: []string{"X-Op", "A", "X-Arg", "1500"}, status: 999, body: "denied"},
		{name: "abort without status is 500, request changes dropped", path: "/", hdr: []string{"X-Op", "D"}, status: 500, body: "",
			wantHeader: map[string]string{"X-Seen-Added": ""}},
		{name: "redirect", path: "/", hdr: []string{"X-Op", "L", "X-Arg", "https://example.test/login"}, status: 302, body: "Redirecting...",
			wantHeader: map[string]string{"Location": "https://example.test/login"}},
		{name: "log continues", path: "/", hdr: []string{"X-Op", "g", "X-Arg", "2"}, status: 200, body: "upstream body"},
	})
}

// reqCase is one request of a table test and the answer it must get.
type reqCase struct {
	name       string
	path       string
	hdr        []string
	status     int
	body       string
	wantHeader map[string]string
}

// runCases sends each case's request to base and checks the answer.
func runCases(t *testing.T, base string, cases []reqCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := servertest.Get(t, base+tc.path, tc.hdr...)
			if r.Status != tc.status || r.Body != tc.body {
				t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, tc.status, tc.body)
			}
			for k, v := range tc.wantHeader {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestConduitABIRequestID checks conduit_get_request_id against the ID Conduit generated.
func TestConduitABIRequestID(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, site(up.URL, probe("")))
	r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", "R")
	if r.Status != 200 || r.Body == "" || r.Body == "-1" {
		t.Fatalf("got %d %q, want the generated request ID", r.Status, r.Body)
	}
	if id := r.Header.Get("X-Request-Id"); id != "" && id != r.Body {
		t.Fatalf("guest saw %q, the response says %q", r.Body, id)
	}
}

// TestConduitABIResponsePhase drives the response-phase host functions.
func TestConduitABIResponsePhase(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, site(up.URL, probe(`phase: response, config: "from config"`)))
	base := srv.URL(8080)
	rop := func(op string) []string { return []string{"X-Rop-Up", op} }
	runCases(t, base, []reqCase{
		{name: "no op", path: "/", status: 200, body: "upstream body", wantHeader: map[string]string{"X-Wasm": "", "Etag": `"abc"`}},
		{name: "headers", path: "/?status=201", hdr: rop("h"), status: 201, body: "upstream body",
			// X-Status: get_response_status*1000 + on_response's argument; X-Up-Copy: the length of X-Up.
			wantHeader: map[string]string{"X-Wasm": "1", "X-Remove-Me": "", "X-Status": "201201", "X-Up-Copy": "5"}},
		{name: "body replaced", path: "/", hdr: rop("b"), status: 200, body: "replaced",
			wantHeader: map[string]string{"Content-Length": "8", "Etag": "", "Content-Type": "text/plain"}},
		{name: "body replaced on an error status", path: "/?status=502", hdr: rop("b"), status: 502, body: "replaced"},
		{name: "body ignored on 204", path: "/?status=204", hdr: rop("b"), status: 204, body: ""},
		{name: "body ignored on 304", path: "/?status=304", hdr: rop("b"), status: 304, body: ""},
		{name: "config as body", path: "/", hdr: rop("c"), status: 200, body: `"from config"`},
		{name: "trap passes the response", path: "/", hdr: rop("Z"), status: 200, body: "upstream body"},
	})
}

// TestConduitABIBodyRules checks the body rules that need a special upstream: a replaced
// body drops Content-Encoding, a Content-Length: 0 response keeps its empty body, HEAD
// gets the new length without a body, and with two response-phase entries the last one
// declared wins.
func TestConduitABIBodyRules(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Rop", "c")
		if r.URL.Path == "/empty" {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(200)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Md5", "xyz")
		_, _ = io.WriteString(w, "\x1f\x8bnot really gzip")
	}))
	defer up.Close()
	srv := servertest.Start(t, site(up.URL,
		probe(`phase: response, config: "first"`),
		probe(`phase: response, config: "second"`)))
	base := srv.URL(8080)
	r := servertest.Get(t, base+"/")
	if r.Status != 200 || r.Body != `"second"` {
		t.Fatalf("got %d %q, want the body of the last entry declared", r.Status, r.Body)
	}
	for _, k := range []string{"Content-Encoding", "Content-Md5"} {
		if v := r.Header.Get(k); v != "" {
			t.Errorf("%s = %q survived a replaced body", k, v)
		}
	}
	if got := r.Header.Get("Content-Length"); got != "8" {
		t.Errorf("Content-Length = %q, want 8", got)
	}
	if r := servertest.Get(t, base+"/empty"); r.Status != 200 || r.Body != "" {
		t.Fatalf("Content-Length: 0 response: got %d %q, want an empty body", r.Status, r.Body)
	}
	h := servertest.Do(t, http.MethodHead, base+"/")
	if h.Body != "" || h.Header.Get("Content-Length") != "8" {
		t.Fatalf("HEAD: body %q, Content-Length %q; want none and 8", h.Body, h.Header.Get("Content-Length"))
	}
}

// TestConduitABIMaskedError checks that on_response does not run on a 5xx that maskErrors
// replaced.
func TestConduitABIMaskedError(t *testing.T) {
	up := upstream(t)
	cfg := site(up.URL, probe(`phase: response`)) + "    maskErrors: true\n"
	srv := servertest.Start(t, cfg)
	r := servertest.Get(t, srv.URL(8080)+"/?status=503", "X-Rop-Up", "b")
	if r.Status != 503 || r.Body == "replaced" || r.Header.Get("X-Wasm") != "" {
		t.Fatalf("masked 5xx: got %d %q %v; the guest must not run", r.Status, r.Body, r.Header)
	}
	r = servertest.Get(t, srv.URL(8080)+"/?status=201", "X-Rop-Up", "b")
	if r.Body != "replaced" {
		t.Fatalf("unmasked response: got %q, want the guest's body", r.Body)
	}
}

// TestConduitABIFailures covers what may go wrong in a guest: a trap, a read outside its
// memory, an endless loop stopped by timeoutMs, each failing open by default and closed
// with onError: deny, and the memory cap.
func TestConduitABIFailures(t *testing.T) {
	up := upstream(t)
	logs := &testtool.LogBuffer{}
	srv := servertest.StartLogged(t, site(up.URL, probe(`timeoutMs: 300`)), slog.New(slog.NewTextHandler(logs, nil)))
	deny := servertest.Start(t, site(up.URL, probe(`timeoutMs: 50, onError: deny`)))
	for _, tc := range []struct {
		name, op, arg string
		open, closed  int
		body          string
	}{
		{"trap", "Z", "", 200, 500, "upstream body"},
		{"out of bounds", "O", "", 200, 500, "upstream body"},
		{"endless loop", "W", "", 200, 500, "upstream body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", tc.op)
			if r.Status != tc.open || r.Body != tc.body {
				t.Fatalf("onError allow: got %d %q, want %d %q", r.Status, r.Body, tc.open, tc.body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			if r := servertest.Get(t, deny.URL(8080)+"/", "X-Op", tc.op); r.Status != tc.closed {
				t.Fatalf("onError deny: got %d %q, want %d", r.Status, r.Body, tc.closed)
			}
			// The entry still works afterwards.
			if r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", "M"); r.Body != "GET" {
				t.Fatalf("after the failure: got %d %q", r.Status, r.Body)
			}
		})
	}
	if !strings.Contains(logs.String(), "timeoutMs") {
		t.Errorf("the endless loop's log does not name timeoutMs:\n%s", logs.String())
	}
	// memory.grow within the 2 MiB cap (32 pages, 1 in use) returns the old size; past it, -1.
	// (A generous timeout: growing is slow under the race detector.)
	mem := servertest.Start(t, site(up.URL, probe(`timeoutMs: 10000, memoryLimitMiB: 2`)))
	if r := servertest.Get(t, mem.URL(8080)+"/", "X-Op", "m", "X-Arg", "31"); r.Body != "1" {
		t.Fatalf("grow within the cap: got %q, want 1; log:\n%s", r.Body, logs.String())
	}
	if r := servertest.Get(t, mem.URL(8080)+"/", "X-Op", "m", "X-Arg", "32"); r.Body != "-1" {
		t.Fatalf("grow past the cap: got %q, want -1", r.Body)
	}
	if r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", "g", "X-Arg", "4"); r.Status != 200 {
		t.Fatalf("log: got %d", r.Status)
	}
	if !strings.Contains(logs.String(), "hello from wasm") {
		t.Errorf("conduit_log at level 4 did not reach the log:\n%s", logs.String())
	}
}

// TestConduitABIInstances checks that no guest state crosses requests with `instances:
// fresh` and with `instances: reset` (the default): a counter kept in a global (op K) or in
// memory (op k) always reads 1; with `instances: reuse` both keep counting.
func TestConduitABIInstances(t *testing.T) {
	up := upstream(t)
	for _, tc := range []struct {
		name, extra string
		keeps       bool
	}{
		{"default", "", false},
		{"fresh", "instances: fresh", false},
		{"reset", "instances: reset", false},
		{"reuse", "instances: reuse", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, site(up.URL, probe(tc.extra)))
			for _, op := range []string{"K", "k"} {
				last := 0
				for i := 0; i < 3; i++ {
					r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", op)
					n, err := strconv.Atoi(r.Body)
					if err != nil {
						t.Fatalf("op %s: %d %q", op, r.Status, r.Body)
					}
					if !tc.keeps && n != 1 {
						t.Fatalf("op %s, request %d: counter %d, want 1 (state crossed requests)", op, i, n)
					}
					if tc.keeps && n <= last {
						t.Fatalf("op %s, request %d: counter %d after %d, want the instance's state kept", op, i, n, last)
					}
					last = n
				}
			}
			// An instance whose memory grew is dropped, not reset: the next one starts at one page.
			if r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", "m", "X-Arg", "1"); r.Body != "1" && !tc.keeps {
				t.Fatalf("grow: %q", r.Body)
			}
			if r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", "m", "X-Arg", "0"); r.Body != "1" && !tc.keeps {
				t.Fatalf("memory after a grown instance: %q pages, want 1", r.Body)
			}
		})
	}
}

// TestWASI checks that a guest sees no environment and no directory by default, and what
// the entry's env and mounts list.
func TestWASI(t *testing.T) {
	up := upstream(t)
	bare := servertest.Start(t, site(up.URL, probe("")))
	dir := t.TempDir()
	given := servertest.Start(t, site(up.URL, probe(`env: {A: "1", B: "2"}, mounts: ["`+dir+`:/data"]`)))
	for _, tc := range []struct {
		name, op   string
		bare, with string
	}{
		{"environment variables", "E", "0", "2"},
		{"preopened directory", "F", "8", "0"},
	} {
		if r := servertest.Get(t, bare.URL(8080)+"/", "X-Op", tc.op); r.Body != tc.bare {
			t.Errorf("%s by default: %q, want %q", tc.name, r.Body, tc.bare)
		}
		if r := servertest.Get(t, given.URL(8080)+"/", "X-Op", tc.op); r.Body != tc.with {
			t.Errorf("%s with env and mounts: %q, want %q", tc.name, r.Body, tc.with)
		}
	}
}

// TestReloadPicksUpChangedModule replaces the guest's file and reloads.
func TestReloadPicksUpChangedModule(t *testing.T) {
	up := upstream(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "guest.wasm")
	copyFile(t, fixture("wat/probe.wasm"), path)
	cfg := site(up.URL, `{type: wasm, path: "`+path+`", phase: response}`)
	srv := servertest.Start(t, cfg)
	if r := servertest.Get(t, srv.URL(8080)+"/", "X-Rop-Up", "h"); r.Header.Get("X-Wasm") != "1" || r.Header.Get("X-Status") == "" {
		t.Fatalf("probe guest: %v", r.Header)
	}
	copyFile(t, fixture("wat/header.wasm"), path)
	srv.Reload(t, cfg)
	r := servertest.Get(t, srv.URL(8080)+"/", "X-Rop-Up", "h")
	if r.Header.Get("X-Wasm") != "1" || r.Header.Get("X-Status") != "" {
		t.Fatalf("after reload the old guest still runs: %v", r.Header)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConfigErrors checks that each bad entry is reported at its exact path.
func TestConfigErrors(t *testing.T) {
	probePath := fixture("wat/probe.wasm")
	for _, tc := range []struct {
		entry, path, want string
		warn              bool
	}{
		{`{type: wasm}`, "sites[0].middleware[0].path", "required", false},
		{`{type: wasm, path: /nonexistent.wasm}`, "sites[0].middleware[0].path", "no such file", false},
		{`{type: wasm, path: "` + probePath + `", phase: sideways}`, "sites[0].middleware[0].phase", "request or response", false},
		{`{type: wasm, path: "` + probePath + `", abi: wasi}`, "sites[0].middleware[0].abi", "auto, conduit or http-wasm", false},
		{`{type: wasm, path: "` + probePath + `", memoryLimitMiB: 0}`, "sites[0].middleware[0].memoryLimitMiB", "between 1 and 4096", false},
		{`{type: wasm, path: "` + probePath + `", timeoutMs: 0}`, "sites[0].middleware[0].timeoutMs", "between 1 and", false},
		{`{type: wasm, path: "` + probePath + `", onError: maybe}`, "sites[0].middleware[0].onError", "allow or deny", false},
		{`{type: wasm, path: "` + probePath + `", instances: many}`, "sites[0].middleware[0].instances", "reset, fresh or reuse", false},
		{`{type: wasm, path: "` + probePath + `", mounts: [relative/dir]}`, "sites[0].middleware[0].mounts[0]", "absolute", false},
		{`{type: wasm, path: "` + fixture("wat/probe.wat") + `"}`, "sites[0].middleware[0].path", "compiling", true},
		{`{type: wasm, path: "` + fixture("wat/probe.wat") + `", onError: deny}`, "sites[0].middleware[0].path", "compiling", false},
		{`{type: wasm, path: "` + fixture("rust/guard.wasm") + `", memoryLimitMiB: 1}`, "sites[0].middleware[0].path", "memory", true},
		{`{type: wasm, path: "` + fixture("wat/hwheader.wasm") + `", abi: conduit}`, "sites[0].middleware[0].path", "does not export on_request", true},
		{`{type: wasm, path: "` + fixture("wat/hwheader.wasm") + `", phase: response}`, "sites[0].middleware[0].phase", "phase: response", false},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			_, d, err := servertest.Build("global:\n  wasm: {diskCache: false}\nsites:\n  - port: 8080\n    middleware:\n      - "+tc.entry+"\n", config.FormatYAML)
			if err != nil && !tc.warn && d == nil {
				t.Fatal(err)
			}
			list := d.Errors()
			if tc.warn {
				list = d.Warnings()
			}
			for _, e := range list {
				if e.Path == tc.path && strings.Contains(e.Message, tc.want) {
					return
				}
			}
			t.Fatalf("no %s at %s containing %q; errors %v warnings %v", map[bool]string{true: "warning", false: "error"}[tc.warn], tc.path, tc.want, d.Errors(), d.Warnings())
		})
	}
}

// TestEntriesInOrder checks two wasm entries in declaration order: the first one's
// answer stops the request before the second runs, and the header it adds is seen by the
// second.
func TestEntriesInOrder(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, site(up.URL, `{type: wasm, path: "`+fixture("rust/guard.wasm")+`"}`, probe("")))
	if r := servertest.Get(t, srv.URL(8080)+"/admin/x", "X-Op", "M"); r.Status != 403 || r.Body != "forbidden by the rust guest" {
		t.Fatalf("first entry's answer: got %d %q", r.Status, r.Body)
	}
	if r := servertest.Get(t, srv.URL(8080)+"/shop", "X-Op", "H", "X-Arg", "x-rust-path"); r.Status != 200 || r.Body != "/shop" {
		t.Fatalf("second entry reading the first one's header: got %d %q", r.Status, r.Body)
	}
}

// TestCompilationCacheOnDisk checks that global.wasm.cacheDir receives the compiled guest.
func TestCompilationCacheOnDisk(t *testing.T) {
	up := upstream(t)
	dir := filepath.Join(t.TempDir(), "cache")
	cfg := strings.Replace(site(up.URL, probe("")), "{diskCache: false}", `{cacheDir: "`+dir+`"}`, 1)
	srv := servertest.Start(t, cfg)
	if r := servertest.Get(t, srv.URL(8080)+"/", "X-Op", "M"); r.Body != "GET" {
		t.Fatalf("got %d %q", r.Status, r.Body)
	}
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		out, _ := exec.Command("find", dir).CombinedOutput()
		t.Fatalf("no compiled guest under %s:\n%s", dir, out)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v, want mode 0700", st, err)
	}
}

// TestInstancesResetGlobalsOnly runs counter.wat (testdata/analysis), a guest that cannot
// write its memory and counts its calls in a global, through a real Conduit: with the
// default `instances: reset` only its globals are restored between requests (no memory
// copy), and every request still sees a fresh counter; with `reuse` the second request of
// an instance is answered 500.
func TestInstancesResetGlobalsOnly(t *testing.T) {
	up := upstream(t)
	guest := filepath.Join("testdata", "analysis", "counter.wasm")
	for _, tc := range []struct {
		extra string
		want  []int
	}{
		{"", []int{200, 200, 200}},
		{", instances: reuse", []int{200, 500, 500}},
	} {
		srv := servertest.Start(t, site(up.URL, `{type: wasm, path: "`+guest+`"`+tc.extra+`}`))
		for i, want := range tc.want {
			if r := servertest.Get(t, srv.URL(8080)+"/"); r.Status != want {
				t.Fatalf("%q, request %d: %d %q, want %d", tc.extra, i, r.Status, r.Body, want)
			}
		}
	}
}
