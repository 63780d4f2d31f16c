package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// named is a real upstream that answers with its name and counts requests.
type named struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func newNamed(t *testing.T, name string, h func(w http.ResponseWriter, r *http.Request) bool) *named {
	t.Helper()
	n := &named{name: name}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && r.URL.Path == "/__health__" {
			if h != nil && !h(w, r) {
				return
			}
			return
		}
		n.hits.Add(1)
		if h != nil && !h(w, r) {
			return
		}
		w.Header().Set("X-Upstream", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(n.Close)
	return n
}

func hit(t *testing.T, c *http.Client, url string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// hitAsync sends a GET for url from a new goroutine counted in wg. A failure is reported
// with t.Errorf (t.Fatal stops only the goroutine that calls it, so it belongs on the test's
// own goroutine); the returned channel is closed once the response has been read.
func hitAsync(t *testing.T, wg *sync.WaitGroup, url string) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	return done
}

// awaitHeld waits until the upstream signals on entered that it holds a request, and fails
// the test if the request hitAsync sent (done) ended first.
func awaitHeld(t *testing.T, entered, done <-chan struct{}) {
	t.Helper()
	select {
	case <-entered:
	case <-done:
		t.Fatal("the request ended before the upstream held it")
	}
}

// releaseOnCleanup returns a function that closes release once; it also runs as a cleanup
// registered now, so a test that stops early still frees the upstream handlers it parked
// (register it after the servers, so it runs before they are closed).
func releaseOnCleanup(t *testing.T, release chan struct{}) func() {
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free)
	return free
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tol)
	}
}

func TestStrategyDistributions(t *testing.T) {
	a, b, c := newNamed(t, "a", nil), newNamed(t, "b", nil), newNamed(t, "c", nil)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /random: { strategy: random, targets: [%[1]q, %[2]q, %[3]q] }
  /hash: { strategy: consistent-hash, hashKey: "header:X-User", targets: [%[1]q, %[2]q, %[3]q] }
  /iphash: { strategy: ip-hash, targets: [%[1]q, %[2]q, %[3]q] }
  /p2c: { strategy: p2c, targets: [%[1]q, %[2]q, %[3]q] }
  /lc: { strategy: least-conn, targets: [%[1]q, %[2]q, %[3]q] }
`, a.URL, b.URL, c.URL))
	base := srv.URL(8080)
	client := &http.Client{}

	count := map[string]int{}
	const n = 3000
	for range n {
		_, body, _ := hit(t, client, base+"/random", nil)
		count[body]++
	}
	for _, k := range []string{"a", "b", "c"} {
		// Binomial(3000, 1/3): sd ≈ 26; 6 sd.
		within(t, "random share of "+k, float64(count[k]), n/3, 155)
	}

	// consistent-hash: each user sticks to one upstream; users spread over all three.
	owner := map[string]string{}
	spread := map[string]int{}
	for i := range 300 {
		user := fmt.Sprintf("user-%d", i)
		_, body, _ := hit(t, client, base+"/hash", map[string]string{"X-User": user})
		owner[user] = body
		spread[body]++
	}
	for i := range 300 {
		user := fmt.Sprintf("user-%d", i)
		if _, body, _ := hit(t, client, base+"/hash", map[string]string{"X-User": user}); body != owner[user] {
			t.Fatalf("user %s moved from %s to %s", user, owner[user], body)
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		within(t, "hash share of "+k, float64(spread[k]), 100, 45)
	}

	// ip-hash: one client IP always reaches the same upstream.
	_, first, _ := hit(t, client, base+"/iphash", nil)
	for range 50 {
		if _, body, _ := hit(t, client, base+"/iphash", nil); body != first {
			t.Fatalf("ip-hash moved from %s to %s", first, body)
		}
	}
}

func TestLeastConnAvoidsBusyUpstream(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := newNamed(t, "slow", func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		return true
	})
	fast := newNamed(t, "fast", nil)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy:\n  /: { strategy: least-conn, targets: [%q, %q] }\n", slow.URL, fast.URL))
	base := srv.URL(8080)
	// Park requests until one is held by the slow upstream.
	var wg sync.WaitGroup
	defer func() { close(release); wg.Wait() }()
	for {
		hitAsync(t, &wg, base+"/block")
		select {
		case <-entered:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	fast.hits.Store(0)
	slowBefore := slow.hits.Load()
	for range 20 {
		if _, body, _ := hit(t, http.DefaultClient, base+"/x", nil); body != "fast" {
			t.Fatalf("least-conn sent a request to %q while it had one in flight", body)
		}
	}
	if slow.hits.Load() != slowBefore {
		t.Fatal("busy upstream received requests")
	}
}

func TestRetryOnDeadResetAnd5xxUpstreams(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	reset := newNamed(t, "reset", func(w http.ResponseWriter, r *http.Request) bool {
		conn, _, _ := http.NewResponseController(w).Hijack()
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
		return false
	})
	failing := newNamed(t, "failing", func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(503)
		return false
	})
	good := newNamed(t, "good", nil)
	var gotBody atomic.Value
	echo := newNamed(t, "echo", func(w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		gotBody.Store(string(b))
		return true
	})
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /dead:  { strategy: round-robin, targets: [%[1]q, %[4]q], retry: { attempts: 1, conditions: [connection_error] } }
  /reset: { targets: [%[2]q, %[4]q], retry: { attempts: 2, conditions: [connection_error] } }
  /5xx:   { targets: [%[3]q, %[4]q], retry: { attempts: 1, conditions: ["5xx"] } }
  /no:    { targets: [%[3]q] }
  /post:  { targets: [%[3]q, %[5]q], retry: { attempts: 1, conditions: ["5xx"] } }
`, deadURL, reset.URL, failing.URL, good.URL, echo.URL))
	base := srv.URL(8080)
	for _, p := range []string{"/dead", "/reset", "/5xx"} {
		for i := range 10 {
			code, body, _ := hit(t, http.DefaultClient, base+p, nil)
			if code != 200 || body != "good" {
				t.Fatalf("%s request %d: %d %q (want the retry to reach the good upstream)", p, i, code, body)
			}
		}
	}
	if failing.hits.Load() == 0 || reset.hits.Load() == 0 {
		t.Fatal("the failing upstreams were never tried; the test proves nothing")
	}
	if code, _, _ := hit(t, http.DefaultClient, base+"/no", nil); code != 503 {
		t.Fatalf("without retry the upstream's 503 must pass through, got %d", code)
	}
	// A POST is replayed with its body (buffered because it fits maxBodyBufferBytes).
	for i := range 4 {
		resp, err := http.Post(base+"/post", "text/plain", strings.NewReader(fmt.Sprintf("payload-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || gotBody.Load() != fmt.Sprintf("payload-%d", i) {
			t.Fatalf("POST %d: %d, upstream body %v", i, resp.StatusCode, gotBody.Load())
		}
	}
}

func TestPerTryTimeoutRetriesAHungUpstream(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	hung := newNamed(t, "hung", func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return false
	})
	good := newNamed(t, "good", nil)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /: { targets: [%q, %q], timeout: { perTryMs: 150 }, retry: { attempts: 1, conditions: [timeout] } }
`, hung.URL, good.URL))
	for range 6 {
		if code, body, _ := hit(t, http.DefaultClient, srv.URL(8080)+"/", nil); code != 200 || body != "good" {
			t.Fatalf("got %d %q", code, body)
		}
	}
	if hung.hits.Load() == 0 {
		t.Fatal("hung upstream never tried")
	}
}

func TestCircuitBreakerAnswers503(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	slow := newNamed(t, "slow", func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead {
			return true // the active health probe
		}
		entered <- struct{}{}
		<-release
		return true
	})
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy:\n  /: { targets: [%q], healthCheck: { maxConnectionsPerUpstream: 1, intervalSecs: 3600 } }\n", slow.URL))
	free := releaseOnCleanup(t, release)
	var wg sync.WaitGroup
	awaitHeld(t, entered, hitAsync(t, &wg, srv.URL(8080)+"/a"))
	code, body, hdr := hit(t, http.DefaultClient, srv.URL(8080)+"/b", nil)
	free()
	wg.Wait()
	if code != 503 || body != `{"error":"Service Unavailable","status":503,"reason":"upstream_overloaded"}` || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("saturated upstream: %d %q", code, body)
	}
}

func TestActiveHealthChecksAndBackup(t *testing.T) {
	var aHealthy, bHealthy atomic.Bool
	aHealthy.Store(true)
	bHealthy.Store(true)
	probe := func(flag *atomic.Bool) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodHead && !flag.Load() {
				w.WriteHeader(500)
				return false
			}
			return true
		}
	}
	a := newNamed(t, "a", probe(&aHealthy))
	b := newNamed(t, "b", probe(&bHealthy))
	backup := newNamed(t, "backup", nil)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /: { targets: [%q, %q], backup: %q, healthCheck: { intervalSecs: 1, unhealthyThreshold: 1, healthyThreshold: 1 } }
`, a.URL, b.URL, backup.URL))
	base := srv.URL(8080)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	onlyFrom := func(want string) func() bool {
		return func() bool {
			for range 6 {
				if _, body, _ := hit(t, http.DefaultClient, base+"/", nil); body != want {
					return false
				}
			}
			return true
		}
	}
	aHealthy.Store(false)
	waitFor("a to be taken out", onlyFrom("b"))
	bHealthy.Store(false)
	waitFor("failover to the backup", onlyFrom("backup"))
	aHealthy.Store(true)
	waitFor("a to come back", onlyFrom("a"))
}

func TestOutlierEjectionAndHalfOpen(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	flaky := newNamed(t, "flaky", func(w http.ResponseWriter, r *http.Request) bool {
		if broken.Load() {
			w.WriteHeader(502)
			return false
		}
		return true
	})
	good := newNamed(t, "good", nil)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
outlierDetection: { consecutive5xx: 3, baseEjectionTimeSecs: 1, maxEjectionTimeSecs: 4, maxEjectionPercent: 50 }
proxy:
  /: { strategy: round-robin, targets: [%q, %q] }
`, flaky.URL, good.URL))
	base := srv.URL(8080)
	// Drive traffic until flaky has failed 3 times in a row and is ejected.
	for range 6 {
		hit(t, http.DefaultClient, base+"/", nil)
	}
	before := flaky.hits.Load()
	for range 20 {
		if code, body, _ := hit(t, http.DefaultClient, base+"/", nil); code != 200 || body != "good" {
			t.Fatalf("ejected upstream still served: %d %q", code, body)
		}
	}
	if flaky.hits.Load() != before {
		t.Fatal("ejected upstream received traffic")
	}
	// After the ejection expires one probe request goes through; it succeeds and restores.
	broken.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for flaky.hits.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("no half-open probe after the ejection expired")
		}
		hit(t, http.DefaultClient, base+"/", nil)
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]int{}
	for range 20 {
		_, body, _ := hit(t, http.DefaultClient, base+"/", nil)
		seen[body]++
	}
	if seen["flaky"] != 10 || seen["good"] != 10 {
		t.Fatalf("after recovery the split is %v, want 10/10", seen)
	}
}

func TestStickySessions(t *testing.T) {
	var downA atomic.Bool
	a := newNamed(t, "a", func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && downA.Load() {
			w.WriteHeader(503)
			return false
		}
		return true
	})
	b := newNamed(t, "b", nil)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /: { targets: [%[1]q, %[2]q], sticky: { cookie: srv, secret: "s3cret" }, healthCheck: { intervalSecs: 1, unhealthyThreshold: 1 } }
  /strict: { targets: [%[1]q, %[2]q], sticky: { cookie: srv, secret: "s3cret", strict: true }, healthCheck: { intervalSecs: 1, unhealthyThreshold: 1 } }
`, a.URL, b.URL))
	base := srv.URL(8080)
	_, first, hdr := hit(t, http.DefaultClient, base+"/", nil)
	cookie := hdr.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "srv=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("Set-Cookie %q", cookie)
	}
	val := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "srv=")
	for range 10 {
		if _, body, _ := hit(t, http.DefaultClient, base+"/", map[string]string{"Cookie": "srv=" + val}); body != first {
			t.Fatalf("pinned request went to %s, want %s", body, first)
		}
	}
	// A forged cookie gets normal balancing (both upstreams seen).
	seen := map[string]bool{}
	for range 10 {
		_, body, _ := hit(t, http.DefaultClient, base+"/", map[string]string{"Cookie": "srv=forged"})
		seen[body] = true
	}
	if len(seen) != 2 {
		t.Fatalf("forged cookie: upstreams seen %v", seen)
	}
	// Pin to a, take a down: strict answers 503, the normal route moves and re-signs.
	var aCookie string
	for aCookie == "" {
		_, body, h := hit(t, http.DefaultClient, base+"/", map[string]string{"Cookie": "srv=forged"})
		if body == "a" {
			aCookie = strings.TrimPrefix(strings.SplitN(h.Get("Set-Cookie"), ";", 2)[0], "srv=")
		}
	}
	downA.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ := hit(t, http.DefaultClient, base+"/strict", map[string]string{"Cookie": "srv=" + aCookie})
		if code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strict sticky route never answered 503 for a down pin")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, body, h := hit(t, http.DefaultClient, base+"/", map[string]string{"Cookie": "srv=" + aCookie})
	if body != "b" || !strings.HasPrefix(h.Get("Set-Cookie"), "srv=") || strings.Contains(h.Get("Set-Cookie"), aCookie) {
		t.Fatalf("down pin: went to %q with Set-Cookie %q", body, h.Get("Set-Cookie"))
	}
}

func TestMirrorGetsTheBody(t *testing.T) {
	got := make(chan string, 1)
	shadow := newNamed(t, "shadow", func(w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + string(b) + " from=" + r.Header.Get("X-Mirrored-From")
		return true
	})
	live := newNamed(t, "live", nil)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy:\n  /: { targets: [%q], mirror: %q }\n", live.URL, shadow.URL))
	resp, err := http.Post(srv.URL(8080)+"/orders", "application/json", bytes.NewReader([]byte(`{"id":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case m := <-got:
		if m != `POST /orders {"id":1} from=`+srv.HostPort(8080) {
			t.Fatalf("mirror saw %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mirror never received the request")
	}
}

func TestGroupsTwoLevelBalancing(t *testing.T) {
	a, b, c := newNamed(t, "a", nil), newNamed(t, "b", nil), newNamed(t, "c", nil)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /g:
    groupStrategy: round-robin
    groups:
      - { name: blue, targets: [%[1]q] }
      - { name: green, targets: [%[2]q, %[3]q] }
`, a.URL, b.URL, c.URL))
	count := map[string]int{}
	for range 40 {
		_, body, _ := hit(t, http.DefaultClient, srv.URL(8080)+"/g", nil)
		count[body]++
	}
	if count["a"] != 20 || count["b"]+count["c"] != 20 {
		t.Fatalf("groups split %v, want blue 20 / green 20", count)
	}
}

// TestP2CUsesEveryHealthyUpstreamAndAvoidsTheSlowOne: every upstream gets measured (none is
// starved), and a slow upstream gets less traffic than the fast ones.
func TestP2CUsesEveryHealthyUpstreamAndAvoidsTheSlowOne(t *testing.T) {
	a, b := newNamed(t, "a", nil), newNamed(t, "b", nil)
	slow := newNamed(t, "slow", func(w http.ResponseWriter, r *http.Request) bool {
		time.Sleep(20 * time.Millisecond)
		return true
	})
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy:\n  /: { strategy: p2c, targets: [%q, %q, %q] }\n", a.URL, b.URL, slow.URL))
	for range 300 {
		hit(t, http.DefaultClient, srv.URL(8080)+"/", nil)
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 || slow.hits.Load() == 0 {
		t.Fatalf("an upstream was starved: a=%d b=%d slow=%d", a.hits.Load(), b.hits.Load(), slow.hits.Load())
	}
	if slow.hits.Load() >= a.hits.Load() || slow.hits.Load() >= b.hits.Load() {
		t.Fatalf("the slow upstream was not avoided: a=%d b=%d slow=%d", a.hits.Load(), b.hits.Load(), slow.hits.Load())
	}
}
