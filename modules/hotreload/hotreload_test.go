package hotreload

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
)

// injectChunks runs body, split into chunks, through the injection writer.
func injectChunks(t testing.TB, ct string, chunks []string, head bool) *httptest.ResponseRecorder {
	in := newInstance(nil, nil, slog.Default())
	h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		n := 0
		for _, c := range chunks {
			n += len(c)
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(200)
		if r.Method == "HEAD" {
			return
		}
		for _, c := range chunks {
			_, _ = io.WriteString(w, c)
		}
	}))
	method := "GET"
	if head {
		method = "HEAD"
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
	return rec
}

func TestInjection(t *testing.T) {
	tests := []struct {
		name   string
		ct     string
		chunks []string
		want   string
	}{
		{"one write", "text/html; charset=utf-8", []string{"<html><body>hi</body></html>"}, "<html><body>hi" + scriptTag + "</body></html>"},
		{"split tag", "text/html", []string{"<body>hi</bo", "dy></html>"}, "<body>hi" + scriptTag + "</body></html>"},
		{"split after <", "text/html", []string{"<body>hi<", "/BODY>"}, "<body>hi" + scriptTag + "</BODY>"},
		{"byte by byte", "text/html", strings.Split("<p>x</p></body>", ""), "<p>x</p>" + scriptTag + "</body>"},
		{"no body tag: appended", "text/html", []string{"<p>fragment</p>"}, "<p>fragment</p>" + scriptTag},
		{"partial at end: appended after it", "text/html", []string{"<p>x</p></bo"}, "<p>x</p></bo" + scriptTag},
		{"first of two", "text/html", []string{"</body></body>"}, scriptTag + "</body></body>"},
		{"not html", "application/json", []string{`{"a":"</body>"}`}, `{"a":"</body>"}`},
		{"xhtml is left alone", "application/xhtml+xml", []string{"<body></body>"}, "<body></body>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := injectChunks(t, tt.ct, tt.chunks, false)
			if got := rec.Body.String(); got != tt.want {
				t.Fatalf("body = %q, want %q", got, tt.want)
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(tt.want)) {
				t.Fatalf("Content-Length %s for %d bytes", cl, len(tt.want))
			}
		})
	}
	// HEAD: the length announces the injected body, and nothing is written.
	rec := injectChunks(t, "text/html", []string{"<body></body>"}, true)
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != strconv.Itoa(len("<body></body>")+len(scriptTag)) {
		t.Fatalf("HEAD: %q %v", rec.Body.String(), rec.Header())
	}
}

func TestNoInjectionIntoEncodedOrPartialBodies(t *testing.T) {
	in := newInstance(nil, nil, slog.Default())
	for _, tt := range []struct {
		code int
		hdr  string
		val  string
	}{{200, "Content-Encoding", "gzip"}, {206, "Content-Range", "bytes 0-5/10"}, {304, "", ""}} {
		h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			if tt.hdr != "" {
				w.Header().Set(tt.hdr, tt.val)
			}
			w.WriteHeader(tt.code)
			if tt.code != 304 {
				_, _ = io.WriteString(w, "</body>")
			}
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if strings.Contains(rec.Body.String(), "script") {
			t.Errorf("%d %s: injected", tt.code, tt.hdr)
		}
	}
}

// FuzzInjection: however the body is split, the result is the body with the tag inserted
// before the first </body> (case-insensitive), or appended.
func FuzzInjection(f *testing.F) {
	f.Add("<html><body>x</body></html>", uint8(3))
	f.Add("</BoDy></body>", uint8(1))
	f.Add("no tag here </bod", uint8(5))
	f.Fuzz(func(t *testing.T, body string, step uint8) {
		if step == 0 {
			step = 1
		}
		var chunks []string
		for i := 0; i < len(body); i += int(step) {
			chunks = append(chunks, body[i:min(i+int(step), len(body))])
		}
		want := body + scriptTag
		if i := strings.Index(strings.ToLower(body), closeBody); i >= 0 && isASCIIFoldSafe(body[:i+len(closeBody)]) {
			want = body[:i] + scriptTag + body[i:]
		} else if i >= 0 {
			return // non-ASCII case folding: strings.ToLower changes lengths; not our reference
		}
		rec := injectChunks(t, "text/html", chunks, false)
		if rec.Body.String() != want {
			t.Fatalf("body %q step %d = %q, want %q", body, step, rec.Body.String(), want)
		}
	})
}

func isASCIIFoldSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestConfigDecode(t *testing.T) {
	var d config.Diagnostics
	var c Config
	config.Decode(map[string]config.Node{"extensions": []config.Node{".CSS", "html", "", "a/b"}, "watch": []config.Node{"./src", " "}}, "h", &c, &d)
	var errs []string
	for _, e := range d.Errors() {
		errs = append(errs, e.Path)
	}
	if strings.Join(errs, " ") != "h.extensions[2] h.extensions[3] h.watch[1]" {
		t.Fatalf("errors %v", d.Errors())
	}
	if strings.Join(c.Extensions, ",") != "css,html" || len(c.Watch) != 1 || !c.Enabled {
		t.Fatalf("config %+v", c)
	}
	var off Config
	config.Decode(false, "h", &off, &d)
	if off.Enabled {
		t.Fatal("false enabled it")
	}
}

func TestUniqueDirs(t *testing.T) {
	if got := uniqueDirs([]string{"/a/b", "/a", "/c", "/a/"}); strings.Join(got, ",") != "/a,/c" {
		t.Fatalf("unique: %v", got)
	}
}

func TestWanted(t *testing.T) {
	in := newInstance(nil, []string{"css", "html"}, slog.Default())
	for name, want := range map[string]bool{
		"/s/app.css": true, "/s/INDEX.HTML": true, "/s/app.js": false, "/s/.app.css.swp": false, "/s/app.css~": false, "/s/Makefile": false,
	} {
		if got := in.wanted(name); got != want {
			t.Errorf("wanted(%q) = %v", name, got)
		}
	}
	anyFile := newInstance(nil, nil, slog.Default())
	if !anyFile.wanted("/x/Makefile") || anyFile.wanted("/x/.hidden") {
		t.Error("no extensions: any visible file")
	}
}

// TestNewGenerationEndsOldStreams: when a reload starts the next instance of the same site,
// the old instance's event streams end so browsers reconnect to the new generation.
func TestNewGenerationEndsOldStreams(t *testing.T) {
	s := &slot{}
	old := newInstance(nil, nil, slog.Default())
	old.slot = s
	if err := old.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(old.serveEvents))
	defer ts.Close()
	res, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	br := bufio.NewReader(res.Body)
	if line, _ := br.ReadString('\n'); line != "retry: 1000\n" {
		t.Fatalf("first line %q", line)
	}
	next := newInstance(nil, nil, slog.Default())
	next.slot = s
	if err := next.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(br)
		ended <- err
	}()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("stream ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old stream stayed open")
	}
	_ = next.Stop(context.Background())
	_ = old.Stop(context.Background())
	if s.cur != nil {
		t.Fatal("slot still holds a stopped instance")
	}
}
