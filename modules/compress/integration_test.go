package compress_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/compress"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/static"
)

// client never asks for or decodes compression on its own.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}

var bigText = strings.Repeat("Conduit compresses text responses. ", 400) // ~14 KB

type result struct {
	code int
	h    http.Header
	raw  []byte
}

func do(t *testing.T, method, url string, hdr ...string) result {
	t.Helper()
	r := servertest.Do(t, method, url, hdr...)
	return result{r.Status, r.Header, []byte(r.Body)}
}

// decode decodes body with the standard decoder of coding.
func decode(t *testing.T, coding string, body []byte) string {
	t.Helper()
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "":
		return string(body)
	default:
		t.Fatalf("unknown coding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", coding, err)
	}
	return string(out)
}

// upstream serves fixed responses by path.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/text":
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("ETag", `"v1"`)
			h.Set("Content-Length", fmt.Sprint(len(bigText)))
			_, _ = io.WriteString(w, bigText)
		case "/chunked-json":
			h.Set("Content-Type", "application/json")
			for i := 0; i < 200; i++ {
				_, _ = fmt.Fprintf(w, `{"row":%d,"text":"some repeated json text"}`+"\n", i)
			}
		case "/small":
			h.Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<p>tiny</p>")
		case "/small-chunked":
			h.Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<p>tiny</p>")
			w.(http.Flusher).Flush()
		case "/png":
			h.Set("Content-Type", "image/png")
			_, _ = io.WriteString(w, bigText)
		case "/pre-gzipped":
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, bigText)
			_ = zw.Close()
		case "/no-transform":
			h.Set("Content-Type", "text/plain")
			h.Set("Cache-Control", "public, no-transform")
			_, _ = io.WriteString(w, bigText)
		case "/range":
			http.ServeContent(w, r, "f.txt", time.Unix(0, 0), strings.NewReader(bigText))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/sse":
			h.Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+bigText+"\n\n")
		case "/untyped":
			h["Content-Type"] = nil // no Content-Type: the compressor sniffs, as net/http would
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>"+bigText+"</body></html>")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(up.Close)
	return up
}

func TestProxiedBodiesAreCompressedWithEveryCoding(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
port: 8080
compression:
  algorithms: [br, zstd, gzip, deflate]
proxy:
  /: "`+up.URL+`"
`)
	base := srv.URL(8080)
	for _, coding := range []string{"br", "zstd", "gzip", "deflate"} {
		for _, path := range []string{"/text", "/chunked-json", "/untyped"} {
			t.Run(coding+path, func(t *testing.T) {
				r := do(t, "GET", base+path, "Accept-Encoding", coding)
				if r.code != 200 || r.h.Get("Content-Encoding") != coding {
					t.Fatalf("= %d, Content-Encoding %q", r.code, r.h.Get("Content-Encoding"))
				}
				// The upstream's length is gone; net/http may add the encoded length of a
				// body that fits its buffer.
				if cl := r.h.Get("Content-Length"); cl != "" && cl != fmt.Sprint(len(r.raw)) {
					t.Errorf("Content-Length %q kept (encoded %d bytes)", cl, len(r.raw))
				}
				if r.h.Get("Vary") != "Accept-Encoding" {
					t.Errorf("Vary = %q", r.h.Values("Vary"))
				}
				body := decode(t, coding, r.raw)
				if len(r.raw) >= len(body) {
					t.Errorf("not smaller: %d encoded bytes for %d", len(r.raw), len(body))
				}
				switch path {
				case "/text":
					if body != bigText {
						t.Fatalf("decoded body differs (%d bytes)", len(body))
					}
					if r.h.Get("Etag") != `W/"v1"` {
						t.Errorf("ETag = %q, want weak", r.h.Get("Etag"))
					}
				case "/chunked-json":
					if !strings.HasPrefix(body, `{"row":0,`) || !strings.HasSuffix(body, `{"row":199,"text":"some repeated json text"}`+"\n") {
						t.Fatalf("decoded body = %.80q…", body)
					}
				case "/untyped":
					if !strings.HasPrefix(r.h.Get("Content-Type"), "text/html") || !strings.HasSuffix(body, "</body></html>") {
						t.Fatalf("Content-Type %q, body %.40q", r.h.Get("Content-Type"), body)
					}
				}
			})
		}
	}
}

func TestQValuesChooseTheCoding(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, "port: 8080\ncompression: true\nproxy:\n  /: \""+up.URL+"\"\n")
	base := srv.URL(8080)
	tests := []struct{ ae, want string }{
		{"gzip, deflate, br, zstd", "br"},
		{"gzip;q=1, br;q=0.5", "gzip"},
		{"br;q=0, zstd;q=0.1, gzip;q=0.05", "zstd"},
		{"deflate", ""}, // not in the default algorithms
		{"identity", ""},
		{"*;q=0", ""},
		{"", ""},
	}
	for _, tt := range tests {
		r := do(t, "GET", base+"/text", "Accept-Encoding", tt.ae)
		if got := r.h.Get("Content-Encoding"); got != tt.want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tt.ae, got, tt.want)
			continue
		}
		if decode(t, tt.want, r.raw) != bigText {
			t.Errorf("Accept-Encoding %q: body differs", tt.ae)
		}
		// Vary is sent whether or not this client got a compressed body (as nginx's
		// gzip_vary), so a cache never hands one client's coding to another.
		if r.h.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary %q", tt.ae, r.h.Get("Vary"))
		}
		if tt.want == "" && r.h.Get("Content-Length") != fmt.Sprint(len(bigText)) {
			t.Errorf("identity response lost its Content-Length: %q", r.h.Get("Content-Length"))
		}
	}
}

func TestResponsesThatAreNotCompressed(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, "port: 8080\ncompression: true\nproxy:\n  /: \""+up.URL+"\"\n")
	base := srv.URL(8080)
	tests := []struct {
		name, method, path string
		hdr                []string
		code               int
		enc                string
	}{
		{"below minBytes", "GET", "/small", nil, 200, ""},
		{"below minBytes, streamed unknown length at end", "GET", "/small-chunked", nil, 200, "gzip"}, // flushed: streamed bodies are compressed (as Caddy)
		{"type not listed", "GET", "/png", nil, 200, ""},
		{"already encoded upstream", "GET", "/pre-gzipped", nil, 200, "gzip"},
		{"no-transform", "GET", "/no-transform", nil, 200, ""},
		{"range", "GET", "/range", []string{"Range", "bytes=0-99"}, 206, ""},
		{"HEAD", "HEAD", "/text", nil, 200, ""},
		{"204", "GET", "/nocontent", nil, 204, ""},
		{"event stream", "GET", "/sse", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+tt.path, append([]string{"Accept-Encoding", "gzip"}, tt.hdr...)...)
			if r.code != tt.code || r.h.Get("Content-Encoding") != tt.enc {
				t.Fatalf("= %d, Content-Encoding %q; want %d %q", r.code, r.h.Get("Content-Encoding"), tt.code, tt.enc)
			}
			switch tt.path {
			case "/pre-gzipped":
				// Exactly one layer: the standard decoder yields the text itself.
				if decode(t, "gzip", r.raw) != bigText {
					t.Fatal("compressed twice")
				}
			case "/range":
				if string(r.raw) != bigText[:100] {
					t.Fatalf("range body %q", r.raw)
				}
			case "/small":
				if string(r.raw) != "<p>tiny</p>" || r.h.Get("Content-Length") != "11" {
					t.Fatalf("small body %q, Content-Length %q", r.raw, r.h.Get("Content-Length"))
				}
			case "/small-chunked":
				if decode(t, "gzip", r.raw) != "<p>tiny</p>" {
					t.Fatal("body differs")
				}
			}
		})
	}
}

// TestStreamingFirstChunkArrivesBeforeUpstreamEnds proves flush-through: the upstream sends
// one event-sized chunk and flushes, then blocks until the test has decoded that chunk from
// the compressed stream on the client side.
func TestStreamingFirstChunkArrivesBeforeUpstreamEnds(t *testing.T) {
	for _, coding := range []string{"gzip", "br", "zstd", "deflate"} {
		t.Run(coding, func(t *testing.T) {
			release := make(chan struct{})
			upDone := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(upDone)
				w.Header().Set("Content-Type", "application/x-ndjson")
				_, _ = io.WriteString(w, `{"first":true}`+"\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-time.After(20 * time.Second):
				}
				_, _ = io.WriteString(w, `{"last":true}`+"\n")
			}))
			defer up.Close()
			srv := servertest.Start(t, `
port: 8080
compression:
  algorithms: [`+coding+`]
  types: ["application/x-ndjson"]
proxy:
  /: "`+up.URL+`"
`)
			req, _ := http.NewRequest("GET", srv.URL(8080)+"/stream", nil)
			req.Header.Set("Accept-Encoding", coding)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = res.Body.Close() }()
			if res.Header.Get("Content-Encoding") != coding {
				t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
			}
			var dec io.Reader
			switch coding {
			case "gzip":
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				dec = zr
			case "br":
				dec = brotli.NewReader(res.Body)
			case "zstd":
				zr, err := zstd.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				dec = zr
			case "deflate":
				zr, err := zlib.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				dec = zr
			}
			br := bufio.NewReader(dec)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("first line: %v", err)
			}
			select {
			case <-upDone:
				t.Fatal("the upstream finished before the first chunk was decoded")
			default:
			}
			if line != `{"first":true}`+"\n" {
				t.Fatalf("first line %q", line)
			}
			close(release)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != `{"last":true}`+"\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestStaticFilesAndSidecars(t *testing.T) {
	dir := t.TempDir()
	js := strings.Repeat("console.log('conduit');\n", 300)
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, js)
	_ = zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "app.js.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain.css"), []byte(strings.Repeat("a{b:c}\n", 400)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
static: %q
staticOptions:
  preCompressed: true
compression: true
`, dir))
	base := srv.URL(8080)

	// The sidecar is served as is: one layer of gzip, its own bytes.
	r := do(t, "GET", base+"/app.js", "Accept-Encoding", "gzip")
	if r.h.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.raw, gz.Bytes()) {
		t.Fatalf("sidecar: Content-Encoding %q, %d bytes (sidecar %d)", r.h.Get("Content-Encoding"), len(r.raw), gz.Len())
	}
	// A file without a sidecar is compressed on the fly.
	r = do(t, "GET", base+"/plain.css", "Accept-Encoding", "br")
	if r.h.Get("Content-Encoding") != "br" || decode(t, "br", r.raw) != strings.Repeat("a{b:c}\n", 400) {
		t.Fatalf("css: Content-Encoding %q", r.h.Get("Content-Encoding"))
	}
	if et := r.h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		t.Errorf("ETag %q not weak", et)
	}
	// Range requests on it stay uncompressed partial content.
	r = do(t, "GET", base+"/plain.css", "Accept-Encoding", "br", "Range", "bytes=0-6")
	if r.code != 206 || r.h.Get("Content-Encoding") != "" || string(r.raw) != "a{b:c}\n" {
		t.Fatalf("range: %d %q %q", r.code, r.h.Get("Content-Encoding"), r.raw)
	}
}

func TestCompressionOffIsNotInTheChain(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, "port: 8080\ncompression: false\nproxy:\n  /: \""+up.URL+"\"\n")
	r := do(t, "GET", srv.URL(8080)+"/text", "Accept-Encoding", "gzip, br")
	if r.h.Get("Content-Encoding") != "" || r.h.Get("Vary") != "" || string(r.raw) != bigText {
		t.Fatalf("compression: false still encoded: %v", r.h)
	}
}
