package h1guard

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// firstMessage feeds raw byte by byte to a fresh parser and returns the length of the
// first complete message, or -1 when the guard refused, switched to pass-through, or the
// input ended first.
func firstMessage(raw []byte) (end int, p *parser) {
	p = newParser(Options{})
	for i := range raw {
		if _, v := p.feed(raw[i : i+1]); v != vOK {
			return -1, p
		}
		if p.reqs == 1 {
			return i + 1, p
		}
	}
	return -1, p
}

// goParseErrorIsURLLevel lists net/http refusals that are not about framing: the guard
// leaves URL syntax beyond its byte classes to net/http, which refuses and closes.
func goParseErrorIsURLLevel(err error) bool {
	s := err.Error()
	return strings.Contains(s, "invalid URI") || strings.Contains(s, "parse ") ||
		strings.Contains(s, "invalid port") || strings.Contains(s, "invalid character") ||
		strings.Contains(s, "Host header")
}

// FuzzGuard: arbitrary bytes never panic the guard, splitting the input never changes the
// verdict, and whenever the guard accepts a first request, net/http parses the same bytes
// with the same framing: same method, target and Host, same body, and it stops reading
// exactly where the guard says the message ends.
func FuzzGuard(f *testing.F) {
	for _, c := range loadCorpus(f) {
		f.Add(c.raw)
	}
	f.Add(typicalGET)
	f.Fuzz(func(t *testing.T, raw []byte) {
		end, p := firstMessage(raw)
		// Split invariance: the whole input gives the same verdict up to the first message.
		whole := newParser(Options{})
		n, v := whole.feed(raw)
		if end >= 0 && whole.reqs == 0 {
			t.Fatalf("byte-wise accepted a message, whole input: n=%d v=%d %s", n, v, whole.reason)
		}
		if end < 0 && whole.reqs > 0 {
			t.Fatalf("whole input completed a message, byte-wise refused: %s", p.reason)
		}
		if end < 0 {
			return
		}
		msg := raw[:end]
		br := bufio.NewReader(io.MultiReader(bytes.NewReader(msg), strings.NewReader("GET /next HTTP/1.1\r\nHost: n\r\n\r\n")))
		req, err := http.ReadRequest(br)
		if err != nil {
			if goParseErrorIsURLLevel(err) {
				return
			}
			t.Fatalf("guard accepted %q, net/http refused: %v", msg, err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatalf("guard accepted %q, net/http body error: %v", msg, err)
		}
		if p.methodLen <= len(p.method) && req.Method != string(p.method[:p.methodLen]) {
			t.Fatalf("method %q vs guard %q", req.Method, p.method[:p.methodLen])
		}
		if p.chunked != (len(req.TransferEncoding) == 1) {
			t.Fatalf("chunked: guard %v, net/http %v", p.chunked, req.TransferEncoding)
		}
		if !p.chunked && uint64(len(body)) != p.cl {
			t.Fatalf("body length: guard %d, net/http %d", p.cl, len(body))
		}
		// net/http must see the sentinel request right after the message.
		next, err := http.ReadRequest(br)
		if err != nil || next.URL.Path != "/next" {
			t.Fatalf("framing mismatch after %q: next request %v, %v", msg, next, err)
		}
	})
}
