package h1engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/h1guard"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// recorder is a handler that records what reaches it and answers in a way chosen by the
// first path segment, so that one byte stream exercises the response writer's paths.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (h *recorder) add(s string) {
	h.mu.Lock()
	h.seen = append(h.seen, s)
	h.mu.Unlock()
}

func (h *recorder) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// errText classes a body error: net/http and the guard word the same refusal differently
// (a bad trailer is "suspiciously long trailer" for one, the guard's reason for the other).
func errText(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	}
	return "error"
}

// summary describes a request as a handler sees it.
func summary(r *http.Request, body []byte, berr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %s host=%q url=%q cl=%d te=%v close=%v\n", r.Method, r.RequestURI, r.Proto, r.Host, r.URL.String(), r.ContentLength, r.TransferEncoding, r.Close)
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		fmt.Fprintf(&b, "  %s: %q\n", k, r.Header[k])
	}
	fmt.Fprintf(&b, "  body=%q err=%s\n", body, errText(berr))
	tk := make([]string, 0, len(r.Trailer))
	for k := range r.Trailer {
		tk = append(tk, k)
	}
	slices.Sort(tk)
	for _, k := range tk {
		fmt.Fprintf(&b, "  trailer %s: %q\n", k, r.Trailer[k])
	}
	return b.String()
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if seg == "noread" {
		h.add(summary(r, nil, nil))
		_, _ = io.WriteString(w, "nr")
		return
	}
	body, err := io.ReadAll(r.Body)
	h.add(summary(r, body, err))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch seg {
	case "chunk":
		for range 3 {
			_, _ = w.Write(bytes.Repeat([]byte("x"), 1000))
		}
	case "flush":
		_, _ = io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "b")
	case "trailer":
		w.Header().Set("Trailer", "X-T")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-T", "v")
		w.Header().Set(http.TrailerPrefix+"X-U", "u")
	case "204":
		w.WriteHeader(http.StatusNoContent)
	case "304":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	case "103":
		w.Header().Add("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "hi")
	case "cl":
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	case "short":
		w.Header().Set("Content-Length", "10")
		_, _ = io.WriteString(w, "hello")
	case "close":
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	case "html":
		_, _ = io.WriteString(w, "<html><body>x</body></html>")
	case "nosniff":
		w.Header()["Content-Type"] = nil
		_, _ = io.WriteString(w, "<html>")
	case "identity":
		w.Header().Set("Transfer-Encoding", "identity")
		_, _ = io.WriteString(w, "id")
	case "inject":
		w.Header().Set("X-Bad", "a\r\nSet-Cookie: evil=1")
		_, _ = io.WriteString(w, "inj")
	case "keepalive10":
		w.Header().Set("Content-Length", "2")
		w.Header().Set("Connection", "keep-alive")
		_, _ = io.WriteString(w, "ka")
	default:
		_, _ = io.WriteString(w, "ok "+strconv.Itoa(len(body)))
	}
}

// enginePair is one recorder per engine, each behind its own guarded listener.
type enginePair struct {
	addr   map[string]string
	rec    map[string]*recorder
	closes map[string]*closes
}

func startPair(t testing.TB) *enginePair {
	p := &enginePair{addr: map[string]string{}, rec: map[string]*recorder{}, closes: map[string]*closes{}}
	for _, e := range engines {
		p.rec[e] = &recorder{}
		p.addr[e], p.closes[e] = startCounted(t, e, p.rec[e], h1guard.Options{})
	}
	return p
}

// outcome is what one engine made of a byte stream.
type outcome struct {
	seen  []string
	resps []string
}

// describe renders a parsed response without its Date.
func describe(r *http.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s close=%v cl=%d te=%v\n", r.Status, r.Close, r.ContentLength, r.TransferEncoding)
	r.Header.Del("Date")
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, r.Header[k])
	}
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(&b, "  body=%q\n", body)
	for _, k := range slices.Sorted(maps.Keys(r.Trailer)) {
		fmt.Fprintf(&b, "  trailer %s: %q\n", k, r.Trailer[k])
	}
	return b.String()
}

// run sends raw to both engines (half-closing after it) and returns their outcomes.
func (p *enginePair) run(t testing.TB, raw []byte) map[string]outcome {
	out := map[string]outcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range engines {
		before := len(p.rec[e].requests())
		wg.Add(1)
		go func() {
			defer wg.Done()
			closed := p.closes[e].count()
			got := rawExchange(t, p.addr[e], raw, true, 5*time.Second)
			if !p.closes[e].waitAbove(closed) {
				t.Errorf("%s: the server did not close the connection", e)
			}
			seen := p.rec[e].requests()[before:]
			var methods []string
			for _, s := range seen {
				m, _, _ := strings.Cut(s, " ")
				methods = append(methods, m)
			}
			var resps []string
			for _, r := range readResponses(got, methods) {
				resps = append(resps, describe(r))
			}
			mu.Lock()
			out[e] = outcome{seen: seen, resps: resps}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// compare fails t when the engines disagree.
func compare(t testing.TB, name string, out map[string]outcome) {
	t.Helper()
	a, b := out["conduit"], out["std"]
	if len(b.seen) > 0 && strings.HasPrefix(b.seen[0], `PRI "*" HTTP/2.0`) {
		// net/http hands an HTTP/2 preface on a port without h2c to the handler as a
		// request; the engine answers 505 (a documented difference, see doc.go).
		if len(a.seen) != 0 || len(a.resps) != 1 || !strings.HasPrefix(a.resps[0], "505 ") {
			t.Errorf("%s: HTTP/2 preface: conduit %v %v", name, a.seen, a.resps)
		}
		return
	}
	if !slices.Equal(a.seen, b.seen) {
		t.Errorf("%s: handler saw\nconduit: %v\nstd:     %v", name, a.seen, b.seen)
	}
	if !slices.Equal(a.resps, b.resps) {
		t.Errorf("%s: client got\nconduit: %v\nstd:     %v", name, a.resps, b.resps)
	}
}

// corpus returns the raw inputs of the guard's smuggling corpus.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile("../h1guard/testdata/smuggling.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			t.Fatalf("bad corpus line %q", line)
		}
		raw, err := unescape(f[3])
		if err != nil {
			t.Fatalf("%s: %v", f[0], err)
		}
		out[f[0]] = raw
	}
	return out
}

// unescape decodes the corpus escapes \r \n \t \\ and \xHH.
func unescape(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		i++
		if i == len(s) {
			return nil, fmt.Errorf("trailing backslash")
		}
		switch s[i] {
		case 'r':
			b = append(b, '\r')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '\\':
			b = append(b, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, err
			}
			b = append(b, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b, nil
}

// writerCases exercise the response writer; each is sent alone and all pipelined.
var writerCases = map[string]string{
	"get":           "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"head":          "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
	"head-cl":       "HEAD /cl HTTP/1.1\r\nHost: a\r\n\r\n",
	"http10":        "GET / HTTP/1.0\r\n\r\n",
	"http10-ka":     "GET /keepalive10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"http10-chunk":  "GET /chunk HTTP/1.0\r\n\r\n",
	"chunk":         "GET /chunk HTTP/1.1\r\nHost: a\r\n\r\n",
	"flush":         "GET /flush HTTP/1.1\r\nHost: a\r\n\r\n",
	"trailer":       "GET /trailer HTTP/1.1\r\nHost: a\r\n\r\n",
	"204":           "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n",
	"304":           "GET /304 HTTP/1.1\r\nHost: a\r\n\r\n",
	"103":           "GET /103 HTTP/1.1\r\nHost: a\r\n\r\n",
	"cl":            "GET /cl HTTP/1.1\r\nHost: a\r\n\r\n",
	"short":         "GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"close":         "GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"req-close":     "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"html":          "GET /html HTTP/1.1\r\nHost: a\r\n\r\n",
	"nosniff":       "GET /nosniff HTTP/1.1\r\nHost: a\r\n\r\n",
	"identity":      "GET /identity HTTP/1.1\r\nHost: a\r\n\r\n",
	"inject":        "GET /inject HTTP/1.1\r\nHost: a\r\n\r\n",
	"noread":        "POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"noread-chunk":  "POST /noread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"post-trailer":  "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
	"bad-trailer":   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"expect":        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
	"expect-bad":    "POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 5\r\n\r\nhello",
	"expect-noread": "POST /noread HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
	"pragma":        "GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"multi":         "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nuser-agent: u\r\n\r\n",
	"bad-url":       "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"abs":           "GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
	"short-body":    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello",
	"short-chunk":   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
	"h2-preface":    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}

// TestDifferentialWriter: for every writer case, both engines show the handler the same
// request and the client the same responses (Date aside).
func TestDifferentialWriter(t *testing.T) {
	p := startPair(t)
	for name, raw := range writerCases {
		compare(t, name, p.run(t, []byte(raw)))
	}
}

// TestDifferentialCorpus: the same for the guard's smuggling corpus.
func TestDifferentialCorpus(t *testing.T) {
	p := startPair(t)
	for name, raw := range corpus(t) {
		compare(t, name, p.run(t, raw))
	}
}

// FuzzEngines feeds the same byte stream to both engines over real sockets and compares
// what reaches the handler and what the client reads.
func FuzzEngines(f *testing.F) {
	for _, raw := range corpus(f) {
		f.Add(raw)
	}
	for _, raw := range writerCases {
		f.Add([]byte(raw))
	}
	p := startPair(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 16<<10 {
			return
		}
		compare(t, "fuzz", p.run(t, raw))
	})
}
