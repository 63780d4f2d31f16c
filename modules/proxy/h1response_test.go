package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// responseHeads are upstream response heads and bodies for the fast-path tests: the ones
// the fast path takes and the ones it leaves to http.ReadResponse.
var responseHeads = []struct {
	name, raw string
	fast      bool
}{
	{"nginx", "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 02 Dec 2026 16:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello", true},
	{"lower-case names", "HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nx-custom-thing: a\r\n\r\nnop", true},
	{"repeated field", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", true},
	{"no reason", "HTTP/1.1 503\r\nContent-Length: 1\r\n\r\nx", true},
	{"spaces and obs-text in value", "HTTP/1.1 200 OK\r\nX-A: \t caf\xc3\xa9 \t\r\nContent-Length: 1\r\n\r\nx", true},
	{"many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-F: v\r\n", 20) + "Content-Length: 1\r\n\r\nx", true},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false},
	{"chunked with trailer", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-T: 1\r\n\r\n", false},
	{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false},
	{"until close", "HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nxyz", false},
	{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false},
	{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false},
	{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false},
	{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
	{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", false},
	{"bare LF", "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 1\r\n\r\nx", false},
	{"folded line", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\nx", false},
	{"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 1\r\n\r\nx", false},
	{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 1\r\n\r\nx", false},
	{"CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 1\r\n\r\nx", false},
	{"status 600", "HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\nx", false},
	{"status 1xx", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false},
	{"bad status", "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\nx", false},
	{"no colon", "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 1\r\n\r\nx", false},
}

// fastThenStd reads raw with readResponse on a connection-less h1Conn and, separately,
// with http.ReadResponse; it returns both (nil on error) and whether the fast path took it.
func fastThenStd(t testing.TB, raw, method string) (fast, std *http.Response, fastBody, stdBody string, took bool) {
	req := &http.Request{Method: method}
	pc := &h1Conn{br: bufio.NewReaderSize(strings.NewReader(raw), h1BufferSize)}
	if _, err := pc.br.Peek(1); err != nil {
		return nil, nil, "", "", false
	}
	resp, fr, err := pc.readResponse(req)
	if err == nil {
		if fr != nil {
			fr.body = h1Body{pc: pc, resp: resp, remaining: resp.ContentLength, done: resp.Body == http.NoBody}
			if resp.Body != http.NoBody {
				resp.Body = &fr.body
			}
			fastBody = readAllDirect(&fr.body)
		} else {
			b, _ := io.ReadAll(resp.Body)
			fastBody = string(b)
		}
		fast = resp
	}
	sresp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), req)
	if err == nil {
		b, _ := io.ReadAll(sresp.Body)
		stdBody = string(b)
		std = sresp
	}
	return fast, std, fastBody, stdBody, fr != nil
}

// readAllDirect reads a fast-path body to its end (or error) without the pool bookkeeping.
func readAllDirect(b *h1Body) string {
	var out []byte
	buf := make([]byte, 7) // small reads, to cross the buffered bytes' end
	for !b.done {
		n, err := b.readDirect(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(out)
}

// sameResponse fails when the fast path's response differs from net/http's in anything the
// proxy reads.
func sameResponse(t testing.TB, name string, fast, std *http.Response, fastBody, stdBody string) {
	t.Helper()
	if (fast == nil) != (std == nil) {
		t.Fatalf("%s: fast path err=%v, net/http err=%v", name, fast == nil, std == nil)
	}
	if fast == nil {
		return
	}
	if fast.Status != std.Status || fast.StatusCode != std.StatusCode || fast.Proto != std.Proto ||
		fast.ProtoMajor != std.ProtoMajor || fast.ProtoMinor != std.ProtoMinor ||
		fast.ContentLength != std.ContentLength || fast.Close != std.Close ||
		!reflect.DeepEqual(fast.TransferEncoding, std.TransferEncoding) ||
		!reflect.DeepEqual(fast.Trailer, std.Trailer) {
		t.Fatalf("%s: fast %q %d %s len=%d close=%v, net/http %q %d %s len=%d close=%v", name,
			fast.Status, fast.StatusCode, fast.Proto, fast.ContentLength, fast.Close,
			std.Status, std.StatusCode, std.Proto, std.ContentLength, std.Close)
	}
	if !reflect.DeepEqual(fast.Header, std.Header) {
		t.Fatalf("%s: header %v, net/http %v", name, fast.Header, std.Header)
	}
	if fastBody != stdBody {
		t.Fatalf("%s: body %q, net/http %q", name, fastBody, stdBody)
	}
}

func TestFastResponseMatchesNetHTTP(t *testing.T) {
	for _, tc := range responseHeads {
		t.Run(tc.name, func(t *testing.T) {
			fast, std, fb, sb, took := fastThenStd(t, tc.raw, http.MethodGet)
			if took != tc.fast {
				t.Fatalf("fast path taken = %v, want %v", took, tc.fast)
			}
			sameResponse(t, tc.name, fast, std, fb, sb)
		})
	}
}

func TestFastResponseNotForHEAD(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
	fast, std, fb, sb, took := fastThenStd(t, raw, http.MethodHead)
	if took {
		t.Fatal("the fast path took the response to a HEAD request")
	}
	sameResponse(t, "HEAD", fast, std, fb, sb)
}

// TestFastResponseShortBody checks that a fast-path body the upstream cuts short ends with
// io.ErrUnexpectedEOF, as net/http's body does, and does not give the connection back.
func TestFastResponseShortBody(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		_, _ = io.WriteString(server, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		server.Close()
	}()
	p := &h1Pool{client: &h1Client{maxIdle: 4}}
	pc := &h1Conn{nc: client, raw: client, pool: p}
	pc.lim.r = client
	pc.lim.n = -1
	pc.br = bufio.NewReaderSize(&pc.lim, h1BufferSize)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := pc.br.Peek(1); err != nil {
		t.Fatal(err)
	}
	resp, fr, err := pc.readResponse(&http.Request{Method: http.MethodGet})
	if err != nil || fr == nil {
		t.Fatalf("fast path not taken: %v", err)
	}
	fr.body = h1Body{pc: pc, resp: resp, remaining: resp.ContentLength}
	b, err := io.ReadAll(&fr.body)
	if string(b) != "abc" || err != io.ErrUnexpectedEOF {
		t.Fatalf("read %q, %v; want \"abc\", unexpected EOF", b, err)
	}
	if len(p.idle) != 0 {
		t.Fatal("a connection with a truncated body went back to the pool")
	}
}

// FuzzFastResponse checks that whatever the fast path accepts, net/http reads the same way.
func FuzzFastResponse(f *testing.F) {
	for _, tc := range responseHeads {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fast, std, fb, sb, took := fastThenStd(t, raw, http.MethodGet)
		if took {
			sameResponse(t, "fuzz", fast, std, fb, sb)
		}
	})
}
