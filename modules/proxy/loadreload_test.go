package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/metrics"
)

// restartable is a real upstream that can be killed (listener and connections closed) and
// started again on the same port.
type restartable struct {
	addr string
	name string
	mu   sync.Mutex
	srv  *http.Server
	hits atomic.Int64
}

func newRestartable(t *testing.T, name string) *restartable {
	t.Helper()
	u := &restartable{name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	t.Cleanup(u.kill)
	return u
}

func (u *restartable) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		io.WriteString(w, u.name)
	})}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go srv.Serve(ln)
}

func (u *restartable) kill() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv != nil {
		u.srv.Close()
		u.srv = nil
	}
}

func (u *restartable) restart(t *testing.T) {
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("restart %s: %v", u.name, err)
		return
	}
	u.serve(ln)
}

// TestLoadWhileReloadingAndChangingUpstreams is issue 4's proof: a bounded load loop on
// loopback while the config is reloaded 50 times, upstreams are added and removed through
// the Admin API, and one upstream is killed and restarted. With retry on, no idempotent
// request fails, and Conduit's request counter accounts for every request.
func TestLoadWhileReloadingAndChangingUpstreams(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	a, b, c, d := newRestartable(t, "a"), newRestartable(t, "b"), newRestartable(t, "c"), newRestartable(t, "d")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "conduit.yaml")
	writeCfg := func(variant int) {
		cfg := fmt.Sprintf(`
global:
  admin: { bind: "127.0.0.1:2019" }
sites:
  - port: 8080
    metrics: {}
    responseTransform: { setHeaders: { X-Variant: "%d" } }
    proxy:
      /api:
        targets: ["http://%s", "http://%s", "http://%s"]
        retry: { attempts: 3, conditions: [connection_error, "5xx"] }
`, variant, a.addr, b.addr, c.addr)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(0)
	srv := servertest.StartFile(t, cfgPath)
	api := servertest.StartAdmin(t, srv, nil)

	base := "http://" + srv.Addr(8080).String() + "/api/x"
	adminURL := "http://" + api.Addr().String()
	adminPost := func(path, body string) {
		resp, err := http.Post(adminURL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Errorf("admin %s: %v", path, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("admin %s: %d %s", path, resp.StatusCode, b)
		}
	}

	var sent, ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, err := client.Get(base)
				if err != nil {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, err.Error())
					failMu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					failMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}

	for i := 1; i <= 50; i++ {
		writeCfg(i)
		resp, err := http.Post(adminURL+"/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reload %d: %d %s", i, resp.StatusCode, answer)
		}
		switch i {
		case 10:
			// Run-time changes last until the next reload, which clears them
			// (docs/configuration.md, "Reloads").
			adminPost("/upstreams/add", fmt.Sprintf(`{"route":"/api","target":"http://%s","weight":2}`, d.addr))
			time.Sleep(50 * time.Millisecond)
			adminPost("/upstreams/weight", fmt.Sprintf(`{"route":"/api","target":"http://%s","weight":1}`, d.addr))
		case 20:
			adminPost("/upstreams/remove", fmt.Sprintf(`{"route":"/api","target":"http://%s"}`, b.addr))
		case 25:
			a.kill()
		case 35:
			a.restart(t)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		failMu.Lock()
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), sent.Load(), failures[:min(5, len(failures))])
	}
	if ok.Load() < 200 {
		t.Fatalf("only %d requests completed; the load loop did not run", ok.Load())
	}
	if d.hits.Load() == 0 {
		t.Error("the upstream added through the Admin API never served (it was live until the next reload)")
	}
	// Conduit counted every request it answered.
	var counted float64
	for _, f := range srv.Metrics().Families() {
		if f.Name == "conduit_requests_total" {
			for _, m := range f.Children() {
				counted += m.Value()
			}
		}
	}
	if int64(counted) != sent.Load() {
		t.Fatalf("conduit_requests_total = %.0f, clients sent %d", counted, sent.Load())
	}
	t.Logf("%d requests, 0 failed, across 50 reloads, add/weight/remove and a killed+restarted upstream (hits a=%d b=%d c=%d d=%d)",
		sent.Load(), a.hits.Load(), b.hits.Load(), c.hits.Load(), d.hits.Load())
}

// TestGracefulShutdownUnderLoadCutsNoRequest shuts the server down while a load loop runs
// against a slow-ish upstream. Every request that reached Conduit gets its full answer: the
// upstream served exactly as many requests as clients completed, and no client saw a
// connection close without an answer (EOF) or a truncated body. The only errors allowed are
// refused or reset connects — connections the kernel took after the listener stopped
// accepting, which never reached Conduit.
func TestGracefulShutdownUnderLoadCutsNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	var upstreamServed atomic.Int64
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, strings.Repeat("x", 1000))
		upstreamServed.Add(1)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go up.Serve(ln)
	defer up.Close()
	srv := server.New(server.Options{Listen: servertest.Ephemeral})
	doc := fmt.Sprintf("port: 8080\nproxy: \"http://%s\"\n", ln.Addr())
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(doc), 0o600)
	g, d, err := server.LoadAndBuild(context.Background(), path, srv.BuildOptions())
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr(8080).String() + "/"
	var completed, cut atomic.Int64
	var wg sync.WaitGroup
	started := make(chan struct{}, 64)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				resp, err := client.Get(base)
				if err != nil {
					msg := err.Error()
					if strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset by peer") {
						return // never reached Conduit
					}
					cut.Add(1)
					t.Errorf("request cut: %v", err)
					return
				}
				select {
				case started <- struct{}{}:
				default:
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(b) != 1000 {
					cut.Add(1)
					t.Errorf("truncated answer: %d %d %v", resp.StatusCode, len(b), err)
					return
				}
				completed.Add(1)
			}
		}()
	}
	for range 32 {
		<-started
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	if cut.Load() != 0 || completed.Load() == 0 || completed.Load() != upstreamServed.Load() {
		t.Fatalf("completed %d, cut %d, upstream served %d", completed.Load(), cut.Load(), upstreamServed.Load())
	}
}

// TestUpstreamActiveGauge: conduit_upstream_active_connections counts requests in flight
// to each upstream and returns to zero.
func TestUpstreamActiveGauge(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go up.Serve(ln)
	defer up.Close()
	target := "http://" + ln.Addr().String()
	srv := server.New(server.Options{Listen: servertest.Ephemeral})
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("port: 8080\nproxy: %q\n", target)), 0o600)
	g, d, err := server.LoadAndBuild(context.Background(), path, srv.BuildOptions())
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	gauge := func() float64 {
		for _, f := range srv.Metrics().Families() {
			if f.Name == "conduit_upstream_active_connections" {
				for _, m := range f.Children() {
					if m.LabelValues[0] == target {
						return m.Value()
					}
				}
			}
		}
		return -1
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + srv.Addr(8080).String() + "/")
			if err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
	}
	if v := gauge(); v != 2 {
		t.Fatalf("gauge with 2 in flight = %v", v)
	}
	close(release)
	wg.Wait()
	if v := gauge(); v != 0 {
		t.Fatalf("gauge after = %v", v)
	}
}
