// Package upgrade_test checks the binary upgrade (docs/deployment.md, "Binary upgrade")
// through real processes: two builds of cmd/conduit that report different versions, the
// binary file replaced by a rename under load, the upgrade triggered by `conduit upgrade`
// and by SIGUSR2, a new binary that exits at once, HTTP/3's UDP socket and the systemd
// notifications.
package upgrade_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/tlstest"
	"github.com/conduitproxy/conduit/core/testtool"
	"github.com/quic-go/quic-go"
	qhttp3 "github.com/quic-go/quic-go/http3"
)

// builds are the two binaries, by version.
var builds = map[string]string{}

const (
	oldVersion = "v0.0.1-upgrade-old"
	newVersion = "v0.0.2-upgrade-new"
	token      = "upgrade-test-token-0123456789"
	// drainSecs is global.shutdownTimeoutSecs of the test configs.
	drainSecs = 15
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conduit-upgrade-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, v := range []string{oldVersion, newVersion} {
		out := filepath.Join(dir, "conduit-"+v)
		cmd := exec.Command("go", "build", "-tags", "grpcnotrace",
			"-ldflags", "-X github.com/conduitproxy/conduit/core/cli.version="+v, "-o", out, "../../cmd/conduit")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build conduit %s: %v\n%s", v, err, b)
			os.Exit(1)
		}
		builds[v] = out
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// install puts the file src at dst by copying it beside dst and renaming it over dst, the way
// a package manager replaces a binary.
func install(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// instance is a Conduit started from bin (a path the test replaces), with its log in a file.
type instance struct {
	dir, bin, cfg, pidFile, logPath string
	port, adminPort                 int
	upstream                        string
	// cert and key, when set, make the site TLS with HTTP/3 (a UDP socket) instead of h2c.
	cert, key string
	// env is added to the process's environment.
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// writeConfig writes the config with X-Config: label on every response.
func (in *instance) writeConfig(t *testing.T, label string) {
	t.Helper()
	proto := "http2: { h2c: true }"
	if in.cert != "" {
		proto = fmt.Sprintf("tls: { cert: %q, key: %q }\n    http3: true", in.cert, in.key)
	}
	src := fmt.Sprintf(`global:
  admin: { bind: "127.0.0.1:%d", token: %q }
  shutdownTimeoutSecs: %d
  pidFile: %s
sites:
  - port: %d
    bind: 127.0.0.1
    %s
    headers:
      X-Config: %s
    proxy:
      /: { targets: [%q] }
`, in.adminPort, token, drainSecs, in.pidFile, in.port, proto, label, in.upstream)
	tmp := in.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, in.cfg); err != nil {
		t.Fatal(err)
	}
}

// start runs the old build from in.bin and waits until its Admin API answers; opts adjust
// the instance before its config is written.
func start(t *testing.T, upstream string, opts ...func(*instance)) *instance {
	t.Helper()
	dir := t.TempDir()
	in := &instance{dir: dir, bin: filepath.Join(dir, "bin", "conduit"), cfg: filepath.Join(dir, "conduit.yaml"),
		pidFile: filepath.Join(dir, "conduit.pid"), logPath: filepath.Join(dir, "conduit.log"),
		port: testtool.FreePort(t), adminPort: testtool.FreePort(t), upstream: upstream, exited: make(chan struct{})}
	if err := os.Mkdir(filepath.Dir(in.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(in)
	}
	install(t, builds[oldVersion], in.bin)
	in.writeConfig(t, "old")
	logf, err := os.Create(in.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	in.cmd = exec.Command(in.bin, "-c", in.cfg)
	in.cmd.Env = append(testEnv(), in.env...)
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = in.cmd.Wait(); close(in.exited) }()
	t.Cleanup(func() {
		stopPID(in.cmd.Process.Pid)
		if b, err := os.ReadFile(in.pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				stopPID(pid)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(in.logPath)
			t.Logf("conduit log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The PID file is written once the Admin API serves: wait for both.
		if st, err := in.status(); err == nil && st.PID == in.cmd.Process.Pid {
			if _, err := os.Stat(in.pidFile); err == nil {
				return in
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(in.logPath)
			t.Fatalf("conduit did not start:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopPID sends SIGKILL to pid and waits (bounded) until it is gone; a PID the test did not
// start is never passed here (the parent's, or the PID its upgrade reported).
func stopPID(pid int) {
	if pid <= 0 || syscall.Kill(pid, syscall.SIGKILL) != nil {
		return
	}
	for range 200 {
		if !alive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// testEnv is the test's environment without the log level variables.
func testEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONDUIT_LOG=") && !strings.HasPrefix(kv, "RUST_LOG=") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}

// status is GET /status of the Admin API over a new connection.
type status struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
}

func (in *instance) status() (status, error) {
	var st status
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/status", in.adminPort), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Close = true
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// upgradeCmd runs `conduit upgrade` (the binary at path) against the instance's Admin API.
func (in *instance) upgradeCmd(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "upgrade", "--admin", fmt.Sprintf("127.0.0.1:%d", in.adminPort))
	cmd.Env = append(testEnv(), "CONDUIT_ADMIN_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitLog waits until the log has a line containing want count times.
func (in *instance) waitLog(t *testing.T, want string, count int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(in.logPath)
		if strings.Count(string(b), want) >= count {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the log has no %d× %q", count, want)
}

// readPID reads the PID file.
func (in *instance) readPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(in.pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("PID file %q: %v", b, err)
	}
	return pid
}

// chunks is the number of pieces of the upstream's /stream answer, one every chunkEvery.
const (
	chunks     = 40
	chunkEvery = 100 * time.Millisecond
)

// upstream answers "ok", and /stream with chunks lines over chunks×chunkEvery.
func upstream(t *testing.T) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		f := w.(http.Flusher)
		for i := range chunks {
			fmt.Fprintf(w, "chunk %d\n", i)
			f.Flush()
			select {
			case <-time.After(chunkEvery):
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	return up.URL
}

// load is the load generator: keep-alive HTTP/1.1, a new connection per request
// (HTTP/1.1) and HTTP/2 (h2c, prior knowledge) workers, counting failures, refused
// connections and which config (X-Config) answered.
type load struct {
	url      string
	stop     chan struct{}
	wg       sync.WaitGroup
	sent     atomic.Int64
	failed   atomic.Int64
	refused  atomic.Int64
	mu       sync.Mutex
	firstErr string
	labels   map[string]int
	// accepted are the completion times of the requests on new connections.
	accepted []time.Time
	lastNew  atomic.Int64 // unix nanoseconds of the first answer with X-Config: new
}

func startLoad(url string) *load {
	l := &load{url: url, stop: make(chan struct{}), labels: map[string]int{}}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	clients := []struct {
		name  string
		c     *http.Client
		fresh bool
	}{
		{"keep-alive", &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}, false},
		{"new-conn", &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}, true},
		{"h2c", &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2}}, false},
	}
	for _, c := range clients {
		for range 2 {
			l.wg.Add(1)
			go l.worker(c.name, c.c, c.fresh)
		}
	}
	return l
}

func (l *load) fail(what string, err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		l.refused.Add(1)
	}
	l.failed.Add(1)
	l.mu.Lock()
	if l.firstErr == "" {
		l.firstErr = what + ": " + err.Error()
	}
	l.mu.Unlock()
}

func (l *load) worker(name string, c *http.Client, fresh bool) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		l.sent.Add(1)
		resp, err := c.Get(l.url + "/")
		if err != nil {
			l.fail(name, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			l.fail(name, err)
			continue
		case resp.StatusCode != 200 || string(body) != "ok":
			l.fail(name, fmt.Errorf("status %d body %q", resp.StatusCode, body))
			continue
		case name == "h2c" && resp.ProtoMajor != 2:
			l.fail(name, fmt.Errorf("answered over %s", resp.Proto))
			continue
		}
		label := resp.Header.Get("X-Config")
		now := time.Now()
		l.mu.Lock()
		l.labels[label]++
		if fresh {
			l.accepted = append(l.accepted, now)
		}
		l.mu.Unlock()
		if label == "new" {
			l.lastNew.CompareAndSwap(0, now.UnixNano())
		}
	}
}

// finish stops the workers.
func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// longestGap is the longest time between two answers on new connections within [from, to].
func (l *load) longestGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	ts := slices.Clone(l.accepted)
	l.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	prev := from
	for _, t := range ts {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			break
		}
		longest = max(longest, t.Sub(prev))
		prev = t
	}
	return max(longest, to.Sub(prev))
}

// stream is one long streaming answer through Conduit on its own connection.
type stream struct {
	label   string
	lines   int
	err     error
	started chan struct{}
	done    chan struct{}
}

func startStream(url string) *stream {
	s := &stream{started: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url + "/stream")
		if err != nil {
			s.err = err
			close(s.started)
			return
		}
		defer resp.Body.Close()
		s.label = resp.Header.Get("X-Config")
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if s.lines == 0 {
				close(s.started)
			}
			s.lines++
		}
		if s.lines == 0 {
			close(s.started)
		}
		s.err = sc.Err()
	}()
	return s
}

// TestUpgradeUnderLoad replaces the binary by a rename and runs `conduit upgrade` under
// constant load: no request fails, no connection is refused, the stream in flight completes
// on the old process, new requests reach the new build, the old process exits within its
// drain time and the PID file names the new one. It logs the longest gap between answers
// on new connections around the upgrade.
func TestUpgradeUnderLoad(t *testing.T) {
	in := start(t, upstream(t))
	oldPID := in.cmd.Process.Pid
	if pid := in.readPID(t); pid != oldPID {
		t.Fatalf("PID file holds %d, want %d", pid, oldPID)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", in.port)
	l := startLoad(url)
	in.writeConfig(t, "new")
	install(t, builds[newVersion], in.bin)
	time.Sleep(300 * time.Millisecond) // a baseline of answers before the upgrade
	st := startStream(url)
	<-st.started
	if st.err != nil {
		l.finish()
		t.Fatalf("stream: %v", st.err)
	}
	trigger := time.Now()
	out, err := in.upgradeCmd(in.bin)
	upgraded := time.Now()
	if err != nil {
		l.finish()
		t.Fatalf("conduit upgrade: %v\n%s", err, out)
	}
	t.Logf("conduit upgrade (%s): %s", upgraded.Sub(trigger).Round(time.Millisecond), strings.TrimSpace(out))
	newPID := in.readPID(t)
	if newPID == oldPID {
		l.finish()
		t.Fatalf("the PID file still names the old process %d", oldPID)
	}
	select {
	case <-st.done:
		t.Errorf("the stream ended before the upgrade returned (%d lines): it was not in flight", st.lines)
	default:
	}
	if !alive(oldPID) {
		t.Errorf("the old process exited before its stream was done")
	}
	<-st.done
	select {
	case <-in.exited:
	case <-time.After(drainSecs * time.Second):
		l.finish()
		t.Fatalf("the old process %d still runs %d s after its stream ended", oldPID, drainSecs)
	}
	exitedAt := time.Now()
	if code := in.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("old process exit code %d", code)
	}
	time.Sleep(300 * time.Millisecond) // answers from the new process alone
	l.finish()

	if st.err != nil || st.lines != chunks || st.label != "old" {
		t.Errorf("stream: %d of %d lines, X-Config %q (want old), err %v", st.lines, chunks, st.label, st.err)
	}
	if l.failed.Load() != 0 || l.refused.Load() != 0 {
		t.Errorf("%d of %d requests failed, %d connections refused; first: %s", l.failed.Load(), l.sent.Load(), l.refused.Load(), l.firstErr)
	}
	if l.labels["old"] == 0 || l.labels["new"] == 0 {
		t.Errorf("answers by config: %v; want both old and new", l.labels)
	}
	s, err := in.status()
	if err != nil || s.Version != newVersion || s.PID != newPID {
		t.Errorf("GET /status after the upgrade: %+v, %v; want version %s, PID %d", s, err, newVersion, newPID)
	}
	if alive(oldPID) {
		t.Errorf("old PID %d is still alive", oldPID)
	}
	first := time.Unix(0, l.lastNew.Load())
	t.Logf("requests: %d sent, %d failed, %d refused; by config %v", l.sent.Load(), l.failed.Load(), l.refused.Load(), l.labels)
	t.Logf("upgrade: first answer from the new process %s after the trigger; old process exited %s after the trigger (stream ended on it)",
		first.Sub(trigger).Round(time.Millisecond), exitedAt.Sub(trigger).Round(time.Millisecond))
	t.Logf("longest gap between answers on new connections: baseline (before the trigger) %.1f ms, across the upgrade %.1f ms",
		float64(l.longestGap(trigger.Add(-250*time.Millisecond), trigger).Microseconds())/1000,
		float64(l.longestGap(trigger, exitedAt).Microseconds())/1000)
}

// TestFailedUpgradeKeepsServing: a new binary that exits at once leaves the old process
// serving (for `conduit upgrade`, which exits non-zero, and for SIGUSR2), with its PID in the
// PID file; SIGUSR2 with a working binary then upgrades.
func TestFailedUpgradeKeepsServing(t *testing.T) {
	in := start(t, upstream(t))
	pid := in.cmd.Process.Pid
	url := fmt.Sprintf("http://127.0.0.1:%d", in.port)
	broken := filepath.Join(in.dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'broken build' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	install(t, broken, in.bin)
	out, err := in.upgradeCmd(builds[oldVersion])
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("conduit upgrade with a broken binary: %v\n%s", err, out)
	}
	if !strings.Contains(out, "upgrade failed; this process keeps serving") || !strings.Contains(out, "exit status 3") {
		t.Errorf("conduit upgrade output does not say why: %s", out)
	}
	in.waitLog(t, "upgrade failed; this process keeps serving", 1)
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	in.waitLog(t, "upgrade failed; this process keeps serving", 2)
	for range 3 {
		resp, err := http.Get(url + "/")
		if err != nil {
			t.Fatalf("after failed upgrades: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after failed upgrades: status %d", resp.StatusCode)
		}
	}
	if s, err := in.status(); err != nil || s.PID != pid || s.Version != oldVersion {
		t.Fatalf("GET /status after failed upgrades: %+v, %v", s, err)
	}
	if got := in.readPID(t); got != pid {
		t.Fatalf("PID file %d after failed upgrades, want %d", got, pid)
	}

	install(t, builds[newVersion], in.bin)
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.exited:
	case <-time.After(drainSecs*time.Second + 30*time.Second):
		// SIGQUIT makes the Go runtime write every goroutine's stack to the log.
		_ = syscall.Kill(pid, syscall.SIGQUIT)
		select {
		case <-in.exited:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("the old process did not exit after SIGUSR2")
	}
	s, err := in.status()
	if err != nil || s.Version != newVersion || s.PID == pid || s.PID != in.readPID(t) {
		t.Fatalf("GET /status after SIGUSR2: %+v, %v", s, err)
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after SIGUSR2: status %d", resp.StatusCode)
	}
}

// TestUpgradeHandsOverHTTP3Socket: a TLS site with HTTP/3 has its UDP socket handed over
// beside the TCP listener (a new process that bound the port itself would fail while the old
// one holds it); after SIGUSR2 a real HTTP/3 client and an HTTPS client reach the new process.
func TestUpgradeHandsOverHTTP3Socket(t *testing.T) {
	ca := tlstest.NewCA(t, "upgrade test CA")
	cert, key := ca.Server(t, "localhost").Write(t, t.TempDir(), "site")
	in := start(t, upstream(t), func(in *instance) { in.cert, in.key = cert, key })
	addr := fmt.Sprintf("127.0.0.1:%d", in.port)
	url := fmt.Sprintf("https://localhost:%d/", in.port)
	h3get := func() (*http.Response, error) {
		tr := &qhttp3.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
			QUICConfig:      &quic.Config{HandshakeIdleTimeout: 5 * time.Second},
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, addr, tc, qc)
			},
		}
		defer tr.Close()
		resp, err := (&http.Client{Transport: tr, Timeout: 15 * time.Second}).Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	tcp := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	resp, err := h3get()
	if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 3 || resp.Header.Get("X-Config") != "old" {
		t.Fatalf("HTTP/3 before the upgrade: %v %+v", err, resp)
	}
	in.writeConfig(t, "new")
	install(t, builds[newVersion], in.bin)
	if err := syscall.Kill(in.cmd.Process.Pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.exited:
	case <-time.After(drainSecs*time.Second + 30*time.Second):
		t.Fatal("the old process did not exit after SIGUSR2")
	}
	in.waitLog(t, "udp/"+addr, 1)
	resp, err = h3get()
	if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 3 || resp.Header.Get("X-Config") != "new" {
		t.Fatalf("HTTP/3 after the upgrade: %v %+v", err, resp)
	}
	resp, err = tcp.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Config") != "new" {
		t.Fatalf("HTTPS after the upgrade: %d %q", resp.StatusCode, resp.Header.Get("X-Config"))
	}
	if s, err := in.status(); err != nil || s.Version != newVersion {
		t.Fatalf("GET /status after the upgrade: %+v %v", s, err)
	}
}

// TestSystemdNotify: started with NOTIFY_SOCKET (systemd's Type=notify), Conduit sends
// READY=1 once it serves, and after an upgrade the old process sends MAINPID= with the new
// process's PID, which the PID file names too.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	read := func() string {
		_ = pc.SetReadDeadline(time.Now().Add(60 * time.Second))
		buf := make([]byte, 512)
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	in := start(t, upstream(t), func(in *instance) { in.env = []string{"NOTIFY_SOCKET=" + sock} })
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	install(t, builds[newVersion], in.bin)
	if out, err := in.upgradeCmd(in.bin); err != nil {
		t.Fatalf("conduit upgrade: %v\n%s", err, out)
	}
	got := read()
	if want := "MAINPID=" + strconv.Itoa(in.readPID(t)); got != want {
		t.Fatalf("notification after the upgrade %q, want %q", got, want)
	}
}
