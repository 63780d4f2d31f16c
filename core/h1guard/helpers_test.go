package h1guard

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type corpusCase struct {
	name      string
	verdict   string // accept, pass or a status
	responses []string
	raw       []byte
}

// unescape decodes \r \n \t \\ and \xHH.
func unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("trailing backslash")
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, errors.New("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, err
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, errors.New("unknown escape \\" + string(s[i]))
		}
	}
	return out, nil
}

func loadCorpus(t testing.TB) []corpusCase {
	data, err := os.ReadFile("testdata/smuggling.txt")
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	seen := map[string]bool{}
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			t.Fatalf("smuggling.txt:%d: want 4 TAB-separated fields, got %d", n+1, len(f))
		}
		raw, err := unescape(f[3])
		if err != nil {
			t.Fatalf("smuggling.txt:%d: %v", n+1, err)
		}
		if seen[f[0]] {
			t.Fatalf("smuggling.txt:%d: duplicate case %q", n+1, f[0])
		}
		seen[f[0]] = true
		c := corpusCase{name: f[0], verdict: f[1], raw: raw}
		if f[2] != "-" {
			c.responses = strings.Split(f[2], ",")
		}
		cases = append(cases, c)
	}
	return cases
}

// recorder is a backend handler that records every request it is given.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Method+" "+r.RequestURI)
	h.mu.Unlock()
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = io.WriteString(w, "ok")
}

func (h *recorder) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

func (h *recorder) reset() {
	h.mu.Lock()
	h.seen = nil
	h.mu.Unlock()
}

// startServer serves h on 127.0.0.1:0 behind the guard.
func startServer(t testing.TB, h http.Handler, opts Options) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveHTTP1(t, h, Wrap(ln, opts))
	return ln.Addr().String()
}

// serveHTTP1 serves h on a guarded listener until the test ends: with net/http's server, or
// with core/h1engine when engine_matrix_test.go replaced it (CONDUIT_HTTP1_ENGINE=conduit).
var serveHTTP1 = func(t testing.TB, h http.Handler, gl net.Listener) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: nil}
	go func() { _ = srv.Serve(gl) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// exchange sends raw on a new connection and reads up to want responses; a status written
// by the guard itself is suffixed with "g". closed reports whether the connection was
// closed (EOF or reset) after them.
func exchange(t testing.TB, addr string, raw []byte, want int, checkClose bool) (statuses []string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for len(statuses) < want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses, true
		}
		st := strconv.Itoa(resp.StatusCode)
		if resp.Header.Get("Date") == "" && resp.Header.Get("Content-Type") == "text/plain" {
			st += "g" // written by the guard, not by net/http
		}
		statuses = append(statuses, st)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if !checkClose {
		return statuses, false
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return statuses, false
	}
	return statuses, err != nil
}
