package script_test

import (
	cryptorand "crypto/rand"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/headers"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/script"
)

// echo is a real upstream that reports what it received in response headers and its body.
func echo(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "echo")
		w.Header().Set("X-Secret", "s3cret")
		w.Header().Set("X-Got-Order", strings.Join(r.Header.Values("X-Order"), ","))
		w.Header().Set("X-Got-Tenant", r.Header.Get("X-Tenant"))
		w.Header().Set("X-Got-Token", r.Header.Get("X-Token"))
		_, _ = fmt.Fprintf(w, "%s %s", r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(up.Close)
	return up
}

// site is a one-site config: the proxy to up and the middleware list.
func site(up, middleware string) string {
	return fmt.Sprintf("port: 8080\nproxy: %q\nmiddleware:\n%s", up, middleware)
}

func TestRequestPhase(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, `
  - type: script
    path: testdata/scripts/gate.go
    config:
      token: t0ken
      reject: 403
      headers: {X-Tenant: acme}
      prefix: {from: /old/, to: /new/}
`))
	tests := []struct {
		name, path string
		hdr        []string
		status     int
		body       string
		header     map[string]string
	}{
		{"abort with status, body and headers", "/x", nil, 403, "no token for GET /x",
			map[string]string{"X-Denied-By": "middleware[0]", "Content-Type": "text/plain; charset=utf-8", "X-Upstream": ""}},
		{"continue with a request header set and one removed", "/x", []string{"X-Token", "t0ken"}, 200, "GET /x",
			map[string]string{"X-Got-Tenant": "acme", "X-Got-Token": "", "X-Upstream": "echo"}},
		{"path rewritten", "/old/a/b?k=v", []string{"X-Token", "t0ken"}, 200, "GET /new/a/b?k=v", nil},
		{"rewritten path is canonical", "/old/../old/a", []string{"X-Token", "t0ken"}, 200, "GET /new/a", nil},
		{"query rewritten", "/q?drop=1&keep=2", []string{"X-Token", "t0ken"}, 200, "GET /q?keep=2", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := servertest.Get(t, srv.URL(8080)+tt.path, tt.hdr...)
			if rep.Status != tt.status || rep.Body != tt.body {
				t.Fatalf("got %d %q, want %d %q", rep.Status, rep.Body, tt.status, tt.body)
			}
			for k, v := range tt.header {
				if got := rep.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestResponsePhase(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, `
  - {type: script, path: testdata/scripts/respond.go, phase: response, config: {tag: r1}}
  - {type: script, path: testdata/scripts/oneheader.go}
`))
	rep := servertest.Get(t, srv.URL(8080)+"/p")
	if rep.Status != 200 || rep.Body != "GET /p" {
		t.Fatalf("got %d %q", rep.Status, rep.Body)
	}
	want := map[string]string{"X-Upstream-Status": "200", "X-Seen-Server": "echo", "X-Secret": "", "X-Order": "r1", "X-Script": "yes"}
	for k, v := range want {
		if got := rep.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestOrdering: entries run in declaration order, the first to answer wins, and the
// response-phase entry sees the response after the request-phase ones.
func TestOrdering(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, `
  - {type: script, path: testdata/scripts/tagged.go, config: {tag: a}}
  - {type: script, path: testdata/scripts/respond.go, phase: response, config: {tag: resp}}
  - {type: script, path: testdata/scripts/tagged.go, config: {tag: b}}
`))
	rep := servertest.Get(t, srv.URL(8080)+"/o")
	if got := rep.Header.Get("X-Got-Order"); got != "a,b" {
		t.Errorf("upstream saw X-Order %q, want a,b", got)
	}
	if got := strings.Join(rep.Header.Values("X-Order"), ","); got != "a,b,resp" {
		t.Errorf("response X-Order %q, want a,b,resp", got)
	}
	rep = servertest.Get(t, srv.URL(8080)+"/o", "X-Stop-At", "a")
	if rep.Status != 418 || rep.Body != "stopped at a" || rep.Header.Get("X-Upstream") != "" {
		t.Errorf("abort at the first entry: %d %q %v", rep.Status, rep.Body, rep.Header)
	}
	// Response-phase entries sit inside the request-phase ones: an answer from a
	// request-phase entry never reaches them.
	if got := strings.Join(rep.Header.Values("X-Order"), ","); got != "a" {
		t.Errorf("after an abort X-Order %q, want a", got)
	}
}

func TestFailures(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, `
sites:
  - port: 8080
    proxy: `+up.URL+`
    middleware:
      - {type: script, path: testdata/scripts/panics.go, timeoutMs: 5000}
      - {type: script, path: testdata/scripts/loops.go, timeoutMs: 200}
  - port: 8081
    proxy: `+up.URL+`
    middleware:
      - {type: script, path: testdata/scripts/panics.go, timeoutMs: 5000, onError: deny}
      - {type: script, path: testdata/scripts/loops.go, timeoutMs: 200, onError: deny}
`)
	tests := []struct {
		name   string
		port   int
		path   string
		status int
		body   string
	}{
		{"panic fails open", 8080, "/boom", 200, "GET /boom"},
		{"endless loop fails open", 8080, "/spin", 200, "GET /spin"},
		{"blocked call fails open", 8080, "/sleep", 200, "GET /sleep"},
		{"panic with onError deny", 8081, "/boom", 500, "Internal Server Error\n"},
		{"endless loop with onError deny", 8081, "/spin", 500, "Internal Server Error\n"},
		{"no failure", 8081, "/fine", 200, "GET /fine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			rep := servertest.Get(t, srv.URL(tt.port)+tt.path)
			if rep.Status != tt.status || rep.Body != tt.body {
				t.Fatalf("got %d %q, want %d %q", rep.Status, rep.Body, tt.status, tt.body)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestPortedRhaiGate runs the Go port of a Rhai gate shown in docs/scripting.md.
func TestPortedRhaiGate(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/apikey.go, onError: deny, config: {key: k1}}\n"))
	if rep := servertest.Get(t, srv.URL(8080)+"/a"); rep.Status != 401 || rep.Body != "unauthorized" || rep.Header.Get("WWW-Authenticate") != "ApiKey" {
		t.Fatalf("without the key: %d %q %v", rep.Status, rep.Body, rep.Header)
	}
	if rep := servertest.Get(t, srv.URL(8080)+"/a", "X-Api-Key", "k1"); rep.Status != 200 || rep.Body != "GET /a" {
		t.Fatalf("with the key: %d %q", rep.Status, rep.Body)
	}
}

// TestDirectoryScript: a directory is one package of several files (its _test.go files are
// left out).
func TestDirectoryScript(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/multi}\n"))
	if rep := servertest.Get(t, srv.URL(8080)+"/"); rep.Status != 200 || rep.Header.Get("X-Multi") != "from two files" {
		t.Fatalf("got %d %v", rep.Status, rep.Header)
	}
}

// TestResponsePhaseFailures: a response-phase call that panics or loops leaves the response
// as it was (fail open), within its budget.
func TestResponsePhaseFailures(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/loops.go, phase: response, timeoutMs: 200}\n"))
	tests := []struct{ path, mark string }{{"/fine", "ran"}, {"/boom", ""}, {"/spin", ""}}
	for _, tt := range tests {
		start := time.Now()
		rep := servertest.Get(t, srv.URL(8080)+tt.path)
		if rep.Status != 200 || rep.Body != "GET "+tt.path || rep.Header.Get("X-Response-Phase") != tt.mark || rep.Header.Get("X-Spun") != "" {
			t.Errorf("%s: %d %q %v", tt.path, rep.Status, rep.Body, rep.Header)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v", tt.path, d)
		}
	}
}

// TestBrokenUpstreamStaysBroken: when the upstream breaks off its response, the client sees a
// truncated response, with or without a script in front (the proxy's abort reaches net/http).
func TestBrokenUpstreamStaysBroken(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "chunked, then broken off") // no Content-Length: chunked
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(up.Close)
	for _, mw := range []string{"", "middleware:\n  - {type: script, path: testdata/scripts/oneheader.go}\n", "middleware:\n  - {type: script, path: testdata/scripts/oneheader.go, timeoutMs: 0}\n"} {
		srv := servertest.Start(t, "port: 8080\nproxy: "+up.URL+"\n"+mw)
		resp, err := http.Get(srv.URL(8080) + "/")
		if err != nil {
			continue // refused before the header: also not a complete answer
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err == nil {
			t.Errorf("%q: a broken upstream response reached the client as complete (%d %q)", mw, resp.StatusCode, b)
		}
	}
}

// TestHijackOnlyUnrestricted: through a real Conduit, a script that runs on the request's
// goroutine (timeoutMs: 0) gets the server's own writer, which can hijack the connection; only
// an unrestricted script can name http.Hijacker, so a sandboxed one cannot take the client's
// connection past Conduit's response writer (docs/scripting.md#sandbox).
func TestHijackOnlyUnrestricted(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/hijacker.go, timeoutMs: 0, unrestricted: true}\n"))
	if rep := servertest.Get(t, srv.URL(8080)+"/h"); rep.Status != 200 || rep.Header.Get("X-Hijacked") != "1" || rep.Body != "hi" {
		t.Fatalf("unrestricted hijacking script: %d %v %q", rep.Status, rep.Header, rep.Body)
	}
	_, d, err := servertest.Build(site(up.URL, "  - {type: script, path: testdata/scripts/hijacker.go, timeoutMs: 0}\n"), config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Message, "has no symbol Hijacker") {
		t.Fatalf("sandboxed hijacking script: errors %v, want the missing symbol Hijacker", errs)
	}
}

// TestSandboxedVariablesAreCopies: through a real Conduit, a sandboxed script that writes the
// standard library's package variables (crypto/rand's Reader and a sentinel error through
// their addresses, base64's encoding, crc32's and unicode's tables through the values they
// point to) changes its own copies, and the process's variables stay as they were
// (docs/scripting.md#sandbox).
func TestSandboxedVariablesAreCopies(t *testing.T) {
	reader, errRange, std := cryptorand.Reader, strconv.ErrRange, *base64.StdEncoding
	crc, crc1, upper := crc32.IEEETable[0], crc32.IEEETable[1], unicode.Upper.R16[0].Lo
	t.Cleanup(func() { // what a script that reached them would have changed
		cryptorand.Reader, strconv.ErrRange, *base64.StdEncoding = reader, errRange, std
		crc32.IEEETable[0], crc32.IEEETable[1], unicode.Upper.R16[0].Lo = crc, crc1, upper
	})
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/globals.go}\n"))
	rep := servertest.Get(t, srv.URL(8080)+"/g")
	if rep.Status != 200 || rep.Header.Get("X-Seen") != "replaced by a script -_8= 1" {
		t.Fatalf("the script's own view: %d X-Seen %q", rep.Status, rep.Header.Get("X-Seen"))
	}
	if cryptorand.Reader != reader {
		t.Error("the script replaced crypto/rand.Reader of the process")
	}
	if strconv.ErrRange != errRange {
		t.Errorf("the script replaced strconv.ErrRange of the process: %v", strconv.ErrRange)
	}
	if got := base64.StdEncoding.EncodeToString([]byte{0xfb, 0xff}); got != "+/8=" {
		t.Errorf("the script changed base64.StdEncoding of the process: %q", got)
	}
	if crc32.IEEETable[0] != crc || crc32.IEEETable[1] != crc1 || unicode.Upper.R16[0].Lo != upper {
		t.Errorf("the script changed shared tables of the process: crc32 %d %d, unicode.Upper %#x", crc32.IEEETable[0], crc32.IEEETable[1], unicode.Upper.R16[0].Lo)
	}
}

// TestScriptGoroutinePanics: through a real Conduit, a script whose goroutines and callbacks
// (go statements, time.AfterFunc, context.AfterFunc) panic does not end the process: each
// panic is recovered and logged, and requests go on being served.
func TestScriptGoroutinePanics(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/gopanic.go}\n"))
	for range 3 {
		if rep := servertest.Get(t, srv.URL(8080)+"/p"); rep.Status != 200 {
			t.Fatalf("status %d", rep.Status)
		}
	}
	time.Sleep(50 * time.Millisecond) // the callbacks' timers
	if rep := servertest.Get(t, srv.URL(8080)+"/after"); rep.Status != 200 || rep.Body != "GET /after" {
		t.Fatalf("after the panics: %d %q", rep.Status, rep.Body)
	}
}

// TestEndlessRecursionStopped: through a real Conduit, one request into a script that
// recurses without end goes on without the script at its budget (onError: continue), and the
// call, which grows its goroutine's stack toward the 1 GB at which Go ends the process, is
// stopped: the entry is disabled (later requests get onError too) and the process lives on.
func TestEndlessRecursionStopped(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/recursion.go}\n"))
	if rep := servertest.Get(t, srv.URL(8080)+"/ok"); rep.Status != 200 || rep.Header.Get("X-Recursion") != "none" {
		t.Fatalf("before: %d %v", rep.Status, rep.Header)
	}
	if rep := servertest.Get(t, srv.URL(8080)+"/rec"); rep.Status != 200 || rep.Body != "GET /rec" {
		t.Fatalf("the recursing request: %d %q, want it to go on without the script", rep.Status, rep.Body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep := servertest.Get(t, srv.URL(8080)+"/ok")
		if rep.Status != 200 {
			t.Fatalf("status %d", rep.Status)
		}
		if rep.Header.Get("X-Recursion") == "" {
			break // disabled: the request went on without the script
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry was not disabled within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the stopped recursion unwinds
	if rep := servertest.Get(t, srv.URL(8080)+"/after"); rep.Status != 200 || rep.Body != "GET /after" {
		t.Fatalf("after: %d %q", rep.Status, rep.Body)
	}
}
