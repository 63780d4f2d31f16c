package script_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// slack is what a request may take past its budget and the watchdog's tick before a test
// calls it late: the development machine is shared and often loaded.
const slack = time.Second

// TestBudgetAnswersInTime: a call that never returns (an interpreted endless loop, or a
// sleep inside compiled code) has its request answered with the entry's error behaviour
// once its budget and at most one watchdog tick have passed, not before the budget.
func TestBudgetAnswersInTime(t *testing.T) {
	up := echo(t)
	const budget, tick = 30 * time.Millisecond, 3 * time.Millisecond // tick: budget/10
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/loops.go, timeoutMs: 30, onError: deny}\n"))
	for _, path := range []string{"/spin", "/sleep"} {
		start := time.Now()
		rep := servertest.Get(t, srv.URL(8080)+path)
		d := time.Since(start)
		t.Logf("%s answered after %v (budget %v, tick %v)", path, d, budget, tick)
		if rep.Status != 500 {
			t.Fatalf("%s: %d %q, want the entry's 500", path, rep.Status, rep.Body)
		}
		if d < budget {
			t.Errorf("%s answered after %v, before its budget %v ran out", path, d, budget)
		}
		if d > budget+tick+slack {
			t.Errorf("%s answered after %v, want within budget %v + tick %v (+%v for a loaded machine)", path, d, budget, tick, slack)
		}
	}
}

// TestAbandonedCallWritesNothing: a call that runs past its budget and then sets a header
// and writes gets an error from its write; the client has the entry's error behaviour as
// the whole response, and the next response on the same connection is intact.
func TestAbandonedCallWritesNothing(t *testing.T) {
	up := echo(t)
	tests := []struct {
		onError string
		status  int
		body    string
	}{
		{"deny", 500, "Internal Server Error\n"},
		{"continue", 200, "GET /late"},
	}
	for _, tt := range tests {
		t.Run(tt.onError, func(t *testing.T) {
			srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/late.go, timeoutMs: 50, onError: "+tt.onError+"}\n"))
			conn, err := net.Dial("tcp", srv.HostPort(8080))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			get := func(path string) (*http.Response, string) {
				t.Helper()
				if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				return resp, string(b)
			}
			resp, body := get("/late")
			if resp.StatusCode != tt.status || body != tt.body || resp.Header.Get("X-Late") != "" {
				t.Fatalf("/late: %d %q %v, want %d %q", resp.StatusCode, body, resp.Header, tt.status, tt.body)
			}
			// The abandoned call writes once its loop ends; wait for what its write returned.
			var report string
			for deadline := time.Now().Add(10 * time.Second); report == ""; {
				if time.Now().After(deadline) {
					t.Fatal("the abandoned call never reported its write")
				}
				report = servertest.Get(t, srv.URL(8080)+"/report").Body
				if report == "" {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if !strings.HasPrefix(report, "wrote 0: ") || !strings.Contains(report, "abandoned") {
				t.Fatalf("the abandoned call's write returned %q, want 0 bytes and the abandoned error", report)
			}
			// Had LATE reached the connection, this response would not parse.
			resp, body = get("/fine")
			if resp.StatusCode != 200 || body != "GET /fine" || resp.Header.Get("X-Late") != "" {
				t.Fatalf("/fine after the abandoned write: %d %q %v", resp.StatusCode, body, resp.Header)
			}
		})
	}
}

// TestNextIsNotBudgeted: the time spent in next (here an upstream slower than the budget)
// does not count against the script's budget.
func TestNextIsNotBudgeted(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // ten budgets
		_, _ = io.WriteString(w, "slow")
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, site(up.URL, "  - {type: script, path: testdata/scripts/oneheader.go, timeoutMs: 20, onError: deny}\n"))
	rep := servertest.Get(t, srv.URL(8080)+"/")
	if rep.Status != 200 || rep.Body != "slow" || rep.Header.Get("X-Script") != "yes" {
		t.Fatalf("got %d %q %v", rep.Status, rep.Body, rep.Header)
	}
	if got := srv.Metrics().Counter("conduit_script_timeouts_total", "", "site", "entry").With("*", "middleware[0]").Value(); got != 0 {
		t.Fatalf("%v timeouts for a call whose time went to the upstream", got)
	}
}
