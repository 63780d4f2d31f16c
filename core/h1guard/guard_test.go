package h1guard

import (
	"bufio"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newParser(o Options) *parser {
	o = o.withDefaults()
	p := &parser{}
	p.init(&o)
	return p
}

// verdictOf runs the parser over raw delivered in the given pieces.
func verdictOf(raw []byte, cuts []int) string {
	p := newParser(Options{})
	prev := 0
	for _, end := range append(cuts, len(raw)) {
		if end <= prev {
			continue
		}
		_, v := p.feed(raw[prev:end])
		switch v {
		case vBad:
			return strconv.Itoa(p.status)
		case vPass:
			return "pass"
		}
		prev = end
	}
	if p.state != sStart {
		return "incomplete"
	}
	return "accept"
}

func TestCorpusParser(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			if got := verdictOf(c.raw, nil); got != c.verdict {
				t.Fatalf("whole input: verdict %s, want %s", got, c.verdict)
			}
			var every []int
			for i := 1; i < len(c.raw); i++ {
				every = append(every, i)
			}
			if got := verdictOf(c.raw, every); got != c.verdict {
				t.Fatalf("byte by byte: verdict %s, want %s", got, c.verdict)
			}
			for k := 0; k < 20; k++ {
				cuts := []int{rng.Intn(len(c.raw) + 1), rng.Intn(len(c.raw) + 1), rng.Intn(len(c.raw) + 1)}
				for i := 1; i < len(cuts); i++ { // sort the three cuts
					for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
						cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
					}
				}
				if got := verdictOf(c.raw, cuts); got != c.verdict {
					t.Fatalf("cuts %v: verdict %s, want %s", cuts, got, c.verdict)
				}
			}
		})
	}
}

// TestCorpusServer sends every corpus case over a raw socket to a real net/http server
// behind the guard, checks the statuses read, that refused connections are closed, and
// that the handler never saw a smuggled request.
func TestCorpusServer(t *testing.T) {
	rec := &recorder{}
	addr := startServer(t, rec, Options{})
	for _, c := range loadCorpus(t) {
		if c.verdict == "pass" {
			continue // covered by TestH2CPriorKnowledge
		}
		t.Run(c.name, func(t *testing.T) {
			rec.reset()
			accept := c.verdict == "accept"
			got, closed := exchange(t, addr, c.raw, len(c.responses), !accept)
			want := append([]string(nil), c.responses...)
			if !accept && len(want) > 0 && want[len(want)-1] == c.verdict {
				want[len(want)-1] += "g" // the refusal is the guard's own answer
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("responses %v, want %v", got, c.responses)
			}
			if !accept && !closed {
				t.Errorf("connection not closed after a refused request")
			}
			time.Sleep(5 * time.Millisecond) // let a wrongly admitted request reach the handler
			for _, r := range rec.requests() {
				if !accept && strings.Contains(r, "smuggled") {
					t.Errorf("handler saw smuggled request %q", r)
				}
			}
		})
	}
}

func TestLimits(t *testing.T) {
	rec := &recorder{}
	addr := startServer(t, rec, Options{MaxHeaders: 10, MaxHeaderBytes: 4 << 10})
	long := "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n"
	many := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 10) + "\r\n"
	okMany := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 9) + "\r\n"
	big := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 5000) + "\r\n\r\n"
	bigTrailer := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + strings.Repeat("v", 5000) + "\r\n\r\n"
	longExt := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=" + strings.Repeat("v", 5000) + "\r\nx\r\n0\r\n\r\n"
	for _, c := range []struct {
		name, raw, want string
	}{
		{"request-line", long, "414"},
		{"header-count", many, "431"},
		{"header-count-ok", okMany, "200"},
		{"header-bytes", big, "431"},
		{"trailer-bytes", bigTrailer, "431"},
		{"chunk-ext", longExt, "400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _ := exchange(t, addr, []byte(c.raw), 1, false)
			if len(got) != 1 || strings.TrimSuffix(got[0], "g") != c.want {
				t.Fatalf("got %v, want %s", got, c.want)
			}
		})
	}
	// Default limits.
	p := newParser(Options{})
	if _, v := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 70<<10))); v != vBad || p.status != 431 {
		t.Fatalf("default MaxHeaderBytes: verdict %d status %d", v, p.status)
	}
	p = newParser(Options{})
	if _, v := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 100))); v != vBad || p.status != 431 {
		t.Fatalf("default MaxHeaders: verdict %d status %d", v, p.status)
	}
}

// TestPipelinedSlow sends a good request, waits for its response, then a bad one on the
// same connection: the second head is validated too.
func TestPipelinedSlow(t *testing.T) {
	rec := &recorder{}
	addr := startServer(t, rec, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	send := func(s string) int {
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for i := 0; i < 3; i++ {
		if s := send("GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"); s != 200 {
			t.Fatalf("request %d: %d", i, s)
		}
	}
	if s := send("POST /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"); s != 400 {
		t.Fatalf("bad request: %d", s)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open")
	}
	for _, r := range rec.requests() {
		if strings.Contains(r, "smuggled") {
			t.Fatalf("handler saw %q", r)
		}
	}
}

// TestPipelinedBackgroundRead makes the bad request arrive while the handler of the
// previous one is still running, so net/http's background read sees it first: the first
// response must still be delivered, then the 400.
func TestPipelinedBackgroundRead(t *testing.T) {
	release := make(chan struct{})
	var rec recorder
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.RequestURI)
		rec.mu.Unlock()
		if r.URL.Path == "/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}), Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(c, "GET /smuggled HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	close(release)
	br := bufio.NewReader(c)
	var got []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		got = append(got, resp.StatusCode)
	}
	if len(got) != 2 || got[0] != 200 || got[1] != 400 {
		t.Fatalf("responses %v, want [200 400]", got)
	}
	for _, r := range rec.requests() {
		if strings.Contains(r, "smuggled") {
			t.Fatalf("handler saw %q", r)
		}
	}
}

// TestBodyViolationBlocksHandlerResponse: a bad chunk in the first request's body is
// answered by the guard; the handler's own response is dropped.
func TestBodyViolationBlocksHandlerResponse(t *testing.T) {
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			t.Error("body read succeeded")
		}
		w.WriteHeader(299)
	}), Options{})
	got, closed := exchange(t, addr, []byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"), 1, true)
	if len(got) != 1 || got[0] != "400g" || !closed {
		t.Fatalf("got %v closed=%v", got, closed)
	}
}

var typicalGET = []byte("GET /api/v1/users/12345/profile?fields=name,email HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) conduit-bench/1.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=abcdef0123456789\r\n" +
	"\r\n")

func TestTypicalGETSize(t *testing.T) {
	if n := len(typicalGET); n < 250 || n > 350 {
		t.Fatalf("typical GET is %d bytes", n)
	}
}

// memConn is a net.Conn that returns the same request forever.
type memConn struct {
	net.Conn
	data []byte
	off  int
}

func (m *memConn) Read(b []byte) (int, error) {
	n := copy(b, m.data[m.off:])
	m.off = (m.off + n) % len(m.data)
	return n, nil
}

func TestZeroAllocs(t *testing.T) {
	p := newParser(Options{})
	chunked := []byte("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, v := p.feed(typicalGET); v != vOK {
			t.Fatal("rejected")
		}
		if _, v := p.feed(chunked); v != vOK {
			t.Fatal("rejected")
		}
	})
	if allocs != 0 {
		t.Fatalf("parser: %v allocs per run", allocs)
	}
	opts := Options{}.withDefaults()
	c := newConn(&memConn{data: typicalGET}, &opts)
	buf := make([]byte, 4096)
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("conn.Read: %v allocs per run", allocs)
	}
}

func BenchmarkGuard(b *testing.B) {
	p := newParser(Options{})
	b.SetBytes(int64(len(typicalGET)))
	b.ReportAllocs()
	for b.Loop() {
		if _, v := p.feed(typicalGET); v != vOK {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkGuardConnRead(b *testing.B) {
	opts := Options{}.withDefaults()
	c := newConn(&memConn{data: typicalGET}, &opts)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(typicalGET)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func TestErrorIsReadOpError(t *testing.T) {
	opts := Options{}.withDefaults()
	var rejected *Error
	opts.OnReject = func(_ net.Addr, e *Error) { rejected = e }
	client, server := net.Pipe()
	defer client.Close()
	c := newConn(server, &opts)
	go func() {
		_, _ = client.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"))
		_, _ = io.Copy(io.Discard, client)
	}()
	buf := make([]byte, 4096)
	var err error
	for err == nil {
		_, err = c.Read(buf)
	}
	oe, ok := err.(*net.OpError)
	if !ok || oe.Op != "read" {
		t.Fatalf("error %T %v", err, err)
	}
	if ge, ok := oe.Err.(*Error); !ok || ge.Status != 400 {
		t.Fatalf("inner error %v", oe.Err)
	}
	if rejected == nil || rejected.Reason != "multiple Host headers" {
		t.Fatalf("OnReject got %v", rejected)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after rejection succeeded")
	}
}

// TestPipelinedViolationKeepsEarlierAnswer: when a pipelined request's body breaks the
// framing while an earlier request's handler is still running, the earlier answer is still
// written (net/http's one-byte background read must not block it), then the connection
// closes. The slow handler makes the background read happen before the answer.
func TestPipelinedViolationKeepsEarlierAnswer(t *testing.T) {
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		_, _ = io.WriteString(w, "ok")
	}), Options{})
	for _, raw := range []string{
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhelloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	} {
		got, closed := exchange(t, addr, []byte(raw), 2, true)
		if len(got) == 0 || got[0] != "200" || !closed {
			t.Errorf("responses %v closed %v, want the first request's 200 and then a closed connection", got, closed)
		}
	}
}
