package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		node    config.Node
		enabled bool
		format  Format
		errPath string
	}{
		{"true", true, true, FormatDev, ""},
		{"false", false, false, FormatDev, ""},
		{"json string", "json", true, FormatJSON, ""},
		{"upper case", "COMBINED", true, FormatCombined, ""},
		{"common", "common", true, FormatCommon, ""},
		{"short", "short", true, FormatShort, ""},
		{"object", map[string]config.Node{"format": "json", "file": "/tmp/x.log", "skipPaths": []config.Node{"/__health__", "/static/**"}, "stripQuery": true}, true, FormatJSON, ""},
		{"object default format", map[string]config.Node{"stripQuery": true}, true, FormatDev, ""},
		{"unknown format", "jsno", true, 0, "sites[0].logging"},
		{"none", "none", true, 0, "sites[0].logging"},
		{"unknown format in object", map[string]config.Node{"format": "xml"}, true, 0, "sites[0].logging.format"},
		{"empty file", map[string]config.Node{"file": " "}, true, 0, "sites[0].logging.file"},
		{"relative skip path", map[string]config.Node{"skipPaths": []config.Node{"/ok", "health"}}, true, 0, "sites[0].logging.skipPaths[1]"},
		{"skipPaths not a list", map[string]config.Node{"skipPaths": "/x"}, true, 0, "sites[0].logging.skipPaths"},
		{"number", 1.0, false, 0, "sites[0].logging"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			d := &config.Diagnostics{}
			config.Decode(tt.node, "sites[0].logging", &c, d)
			if tt.errPath != "" {
				if e := d.Errors(); len(e) != 1 || e[0].Path != tt.errPath {
					t.Fatalf("errors %v; want one at %s", e, tt.errPath)
				}
				return
			}
			if d.HasErrors() || c.Enabled != tt.enabled || c.Format != tt.format {
				t.Fatalf("got %+v %v", c, d.Errors())
			}
		})
	}
	var c Config
	d := &config.Diagnostics{}
	config.Decode("jsno", "l", &c, d)
	if !strings.Contains(d.Errors()[0].Message, `did you mean "json"`) {
		t.Errorf("no suggestion: %v", d.Errors())
	}
}

func FuzzConfigFormat(f *testing.F) {
	for _, s := range formatList {
		f.Add(s)
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		var c Config
		d := &config.Diagnostics{}
		config.Decode(map[string]config.Node{"format": s, "skipPaths": []config.Node{s}}, "l", &c, d)
		if _, ok := formatNames[strings.ToLower(s)]; !ok && !d.HasErrors() {
			t.Fatalf("format %q accepted", s)
		}
	})
}

// fixedEntry builds a finished request with known values.
func fixedEntry(t testing.TB, method, target string, upstream bool) (*entry, func()) {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "203.0.113.7:5555"
	r.Header.Set("User-Agent", `curl/8 "x"`)
	start := time.Date(2026, 11, 22, 10, 11, 12, 345_000_000, time.UTC)
	st, r := core.AcquireState(httptest.NewRecorder(), r, &core.Site{}, start)
	st.ID = "req-1"
	st.Writer.Status = 201
	st.Writer.Bytes = 42
	if upstream {
		st.Upstream = "http://10.0.0.1:9000"
		st.UpstreamDuration = 1500 * time.Microsecond
	}
	return &entry{r: r, st: st, end: start.Add(2345 * time.Microsecond)}, func() { core.ReleaseState(st) }
}

func TestFormats(t *testing.T) {
	tests := []struct {
		format     Format
		upstream   bool
		stripQuery bool
		want       string
	}{
		{FormatCommon, false, false, `203.0.113.7 - - [22/Nov/2026:10:11:12 +0000] "GET /a/b?q=1 HTTP/1.1" 201 42` + "\n"},
		{FormatCombined, false, true, `203.0.113.7 - - [22/Nov/2026:10:11:12 +0000] "GET /a/b HTTP/1.1" 201 42 "-" "curl/8 \"x\""` + "\n"},
		{FormatShort, false, false, "203.0.113.7 - GET /a/b?q=1 HTTP/1.1 201 42 - 2.345 ms\n"},
		{FormatDev, false, false, "GET /a/b?q=1 201 2.345 ms - 42\n"},
		{FormatJSON, false, false, `{"time":"2026-11-22T10:11:12.345Z","method":"GET","path":"/a/b?q=1","status":201,"bytes":42,"duration_ms":2.345,"ip":"203.0.113.7","request_id":"req-1","upstream":null}` + "\n"},
		{FormatJSON, true, true, `{"time":"2026-11-22T10:11:12.345Z","method":"GET","path":"/a/b","status":201,"bytes":42,"duration_ms":2.345,"upstream_ms":1.500,"ip":"203.0.113.7","request_id":"req-1","upstream":"http://10.0.0.1:9000"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format.String(), func(t *testing.T) {
			e, done := fixedEntry(t, "GET", "/a/b?q=1", tt.upstream)
			defer done()
			e.stripQuery = tt.stripQuery
			l := &logger{format: tt.format}
			if got := string(l.render(nil, e, false)); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	e, done := fixedEntry(t, "GET", "/", false)
	defer done()
	e.st.Writer.Status = 503
	if got := string(appendDev(nil, e, true)); !strings.Contains(got, colorRed+"503"+colorReset) {
		t.Errorf("dev colour: %q", got)
	}
}

func TestJSONFieldsExactly(t *testing.T) {
	for _, up := range []bool{false, true} {
		e, done := fixedEntry(t, "POST", "/x", up)
		var m map[string]any
		if err := json.Unmarshal(appendJSON(nil, e), &m); err != nil {
			t.Fatal(err)
		}
		done()
		want := []string{"bytes", "duration_ms", "ip", "method", "path", "request_id", "status", "time", "upstream"}
		if up {
			want = append(want, "upstream_ms")
		}
		if len(m) != len(want) {
			t.Fatalf("fields %v; want %v", m, want)
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("missing %s", k)
			}
		}
	}
}

// TestNoLineForging: a request target with quotes, CR/LF and control bytes stays on one line
// in every format, and the JSON stays valid.
func TestNoLineForging(t *testing.T) {
	e, done := fixedEntry(t, "GET", "/", false)
	defer done()
	e.r.RequestURI = "/a\"b\r\n127.0.0.1 - - [x] \"GET /admin\x00 \xff"
	e.r.Method = "G\nET"
	for _, f := range []Format{FormatDev, FormatCombined, FormatCommon, FormatShort, FormatJSON} {
		line := (&logger{format: f}).render(nil, e, false)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' || bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			t.Errorf("%s: %q", f, line)
		}
		if f == FormatJSON && !json.Valid(line) {
			t.Errorf("invalid JSON %q", line)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "\xff\xfe", "日本", "\x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var out string
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%q -> %q: %v", s, b, err)
		}
		if string([]rune(s)) != out {
			t.Fatalf("round trip %q -> %q", s, out)
		}
	})
}

func FuzzQuoted(f *testing.F) {
	f.Add("/a\"b\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, b := range [][]byte{appendQuoted(nil, s), appendField(nil, s)} {
			for _, c := range b {
				if c < 0x20 || c >= 0x7f {
					t.Fatalf("%q escaped to %q", s, b)
				}
			}
		}
	})
}

func newLogger(t testing.TB, node config.Node, out io.Writer) *logger {
	t.Helper()
	d := &config.Diagnostics{}
	g := core.NewGlobalContext(context.Background(), nil, d, nil, nil)
	ctx := core.NewSiteContext(context.Background(), &core.Site{Path: "sites[0]"}, map[string]config.Node{"logging": node}, g, nil)
	inst := provision(ctx)
	if d.HasErrors() {
		t.Fatal(d.Errors())
	}
	l := inst.(*logger)
	l.stdout = out
	return l
}

func TestSkipPaths(t *testing.T) {
	var buf bytes.Buffer
	l := newLogger(t, map[string]config.Node{"format": "short", "skipPaths": []config.Node{"/__health__", "/static/**"}}, &buf)
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	for _, p := range []string{"/__health__", "/static", "/static/app.js", "/api", "/__health__x"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " /api ") || !strings.Contains(lines[1], " /__health__x ") {
		t.Fatalf("lines %q", lines)
	}
}

func TestLoggingDoesNotAllocate(t *testing.T) {
	l := newLogger(t, "json", io.Discard)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := l.Wrap(next)
	r := httptest.NewRequest("GET", "/x?y=1", nil)
	w := httptest.NewRecorder()
	site := &core.Site{}
	run := func(h http.Handler) float64 {
		return testing.AllocsPerRun(200, func() {
			st, r2 := core.AcquireState(w, r, site, time.Now())
			h.ServeHTTP(&st.Writer, r2)
			core.ReleaseState(st)
		})
	}
	run(h)
	if with, without := run(h), run(next); with > without {
		t.Fatalf("the access log adds %v allocations per request", with-without)
	}
}

func BenchmarkLog(b *testing.B) {
	for _, f := range formatList {
		b.Run(f, func(b *testing.B) {
			l := newLogger(b, f, io.Discard)
			h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
			r := httptest.NewRequest("GET", "/x?y=1", nil)
			r.Header.Set("User-Agent", "bench")
			w := httptest.NewRecorder()
			site := &core.Site{}
			b.ReportAllocs()
			for b.Loop() {
				st, r2 := core.AcquireState(w, r, site, time.Now())
				h.ServeHTTP(&st.Writer, r2)
				core.ReleaseState(st)
			}
		})
	}
}

func TestFileDirectoryMustExistAndValidateCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		file string
		err  bool
	}{{dir + "/missing/access.log", true}, {dir + "/access.log", false}} {
		d := &config.Diagnostics{}
		g := core.NewGlobalContext(context.Background(), nil, d, nil, nil)
		ctx := core.NewSiteContext(context.Background(), &core.Site{Path: "sites[0]"},
			map[string]config.Node{"logging": map[string]config.Node{"file": tt.file}}, g, nil)
		_ = provision(ctx)
		if e := d.Errors(); tt.err != (len(e) == 1 && e[0].Path == "sites[0].logging.file") {
			t.Errorf("%s: errors %v", tt.file, e)
		}
	}
	if _, err := os.Stat(dir + "/access.log"); err == nil {
		t.Error("provisioning (validate) created the log file")
	}
}
