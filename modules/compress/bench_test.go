package compress

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

// sink is a minimal ResponseWriter that drops the body.
type sink struct{ h http.Header }

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
func (s *sink) WriteHeader(int)             {}

func benchmark(b *testing.B, ae string, body []byte, ct string) {
	var c Config
	config.Decode(true, "c", &c, &config.Diagnostics{})
	h := New(c, nil).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{ct}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
		_, _ = w.Write(body)
	}))
	req, _ := http.NewRequest("GET", "/", nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	w := &sink{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

var page = []byte(strings.Repeat("<p>Conduit compresses text responses.</p>\n", 400))

func BenchmarkIdentityNoAcceptEncoding(b *testing.B) { benchmark(b, "", page, "text/html") }
func BenchmarkIdentityImage(b *testing.B)            { benchmark(b, "gzip, br", page, "image/png") }
func BenchmarkGzip(b *testing.B)                     { benchmark(b, "gzip", page, "text/html") }
func BenchmarkBrotli(b *testing.B)                   { benchmark(b, "br", page, "text/html") }
func BenchmarkZstd(b *testing.B)                     { benchmark(b, "zstd", page, "text/html") }
