package diskcache

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/modules/cache"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func entry(key, lang string, body []byte) *cache.Entry {
	now := time.Now().UnixNano()
	e := &cache.Entry{Key: key, Status: 200, Body: body, Header: http.Header{"Content-Type": {"text/plain"}},
		StoredAt: now, FreshUntil: now + int64(time.Hour), SWRUntil: now + int64(time.Hour), SIEUntil: now + int64(time.Hour)}
	if lang != "" {
		e.Vary = []cache.VaryField{{Name: "Accept-Language", Values: []string{lang}}}
	}
	return e.Finish()
}

// pattern is a body whose every byte depends on key and generation, so a mix of two writes
// is detectable.
func pattern(key string, gen, n int) []byte {
	b := make([]byte, n)
	seed := byte(len(key)*31 + gen*7)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

func files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestSetGetPurgeReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*cache.Entry{entry("k", "en", []byte("en1")), entry("k", "fr", []byte("fr")), entry("k", "en", []byte("en2")), entry("other", "", []byte("o"))} {
		if err := s.Set(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store, want map[string]bool) {
		t.Helper()
		list, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range list {
			got[string(e.Body)] = true
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("variants %v, want %v", got, want)
		}
	}
	check(s, map[string]bool{"en2": true, "fr": true})
	// A restart rebuilds the index from the files.
	s2, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(s2, map[string]bool{"en2": true, "fr": true})
	if s2.Bytes() != s.Bytes() {
		t.Fatalf("reopened index %d bytes, was %d", s2.Bytes(), s.Bytes())
	}
	if ok, _ := s2.Purge(ctx, "k"); !ok {
		t.Fatal("purge found nothing")
	}
	check(s2, map[string]bool{})
	s3, _ := Open(dir, 0)
	check(s3, map[string]bool{})
	if list, _ := s3.Get(ctx, "other"); len(list) != 1 {
		t.Fatal("purge removed another key")
	}
}

func TestBudgetEvictsLRU(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	one := int64(len(entry("k00", "", pattern("k00", 0, 4000)).Encode()))
	budget := 5*one + one/2
	s, err := Open(dir, budget)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		k := fmt.Sprintf("k%02d", i)
		_ = s.Set(ctx, entry(k, "", pattern(k, 0, 4000)))
	}
	_, _ = s.Get(ctx, "k00") // k00 is now the most recent; k01 the least
	for i := 5; i < 8; i++ {
		k := fmt.Sprintf("k%02d", i)
		_ = s.Set(ctx, entry(k, "", pattern(k, 0, 4000)))
	}
	present := func(s *Store, k string) bool { l, _ := s.Get(ctx, k); return len(l) == 1 }
	for k, want := range map[string]bool{"k00": true, "k01": false, "k02": false, "k03": false, "k04": true, "k07": true} {
		if got := present(s, k); got != want {
			t.Errorf("%s present = %v, want %v", k, got, want)
		}
	}
	var total int64
	for _, p := range files(t, dir, entrySuffix) {
		st, _ := os.Stat(p)
		total += st.Size()
	}
	if total > budget || s.Bytes() > budget {
		t.Fatalf("disk holds %d bytes (index %d), budget %d", total, s.Bytes(), budget)
	}
	// Reopening with a smaller budget evicts down to it.
	s2, err := Open(dir, 2*one)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Bytes() > 2*one || len(files(t, dir, entrySuffix)) > 2 {
		t.Fatalf("after reopen with a smaller budget: %d bytes, %d files", s2.Bytes(), len(files(t, dir, entrySuffix)))
	}
}

func TestDamagedFilesAreNotServed(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := Open(dir, 0)
	_ = s.Set(ctx, entry("k", "", pattern("k", 1, 10000)))
	paths := files(t, dir, entrySuffix)
	if len(paths) != 1 {
		t.Fatalf("%d files", len(paths))
	}
	// Truncate the file in place (a torn write that somehow got its final name).
	data, _ := os.ReadFile(paths[0])
	if err := os.WriteFile(paths[0], data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Get(ctx, "k"); len(l) != 0 {
		t.Fatal("a truncated entry was served")
	}
	if _, err := os.Stat(paths[0]); !os.IsNotExist(err) {
		t.Fatal("the damaged file was not removed")
	}
	// At start-up, damaged files and leftovers are cleaned.
	_ = os.WriteFile(paths[0], data[:100], 0o600)
	_ = os.WriteFile(paths[0]+".abc.tmp", data, 0o600)
	s2, _ := Open(dir, 0)
	if s2.Bytes() != 0 || len(files(t, dir, entrySuffix))+len(files(t, dir, tmpSuffix)) != 0 {
		t.Fatal("start-up scan kept damaged or temporary files")
	}
}

// TestCrashChild is the child process of TestCrashMidWrite; it does nothing otherwise.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("DISKCACHE_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashMidWrite")
	}
	mode := os.Getenv("DISKCACHE_CRASH_MODE")
	s, err := Open(dir, 0)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	switch mode {
	case "hook":
		// v1 complete, then v2 stops halfway through its temporary file.
		_ = s.Set(ctx, entry("key", "", pattern("key", 1, 1<<20)))
		s.midWrite = func() {
			fmt.Println("ready")
			time.Sleep(time.Hour)
		}
		_ = s.Set(ctx, entry("key", "", pattern("key", 2, 1<<20)))
	case "loop":
		fmt.Println("ready")
		for gen := 0; ; gen++ {
			k := "k" + strconv.Itoa(gen%7)
			_ = s.Set(ctx, entry(k, "", pattern(k, gen, 64<<10+gen%5000)))
		}
	}
}

// startChild runs TestCrashChild in a child process and SIGKILLs it after it said ready
// (plus delay).
func crashChild(t *testing.T, dir, mode string, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DISKCACHE_CRASH_DIR="+dir, "DISKCACHE_CRASH_MODE="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- "ready"
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		ready <- "child exited without ready"
	}()
	select {
	case msg := <-ready:
		if msg != "ready" {
			t.Fatal(msg)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child never became ready")
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// TestCrashMidWrite kills a process in the middle of writing an entry (SIGKILL, no chance
// to clean up) and checks that after a restart only whole entries are served.
func TestCrashMidWrite(t *testing.T) {
	ctx := context.Background()
	t.Run("killed halfway through a temporary file", func(t *testing.T) {
		dir := t.TempDir()
		crashChild(t, dir, "hook", 0)
		if len(files(t, dir, tmpSuffix)) != 1 {
			t.Fatalf("expected the interrupted temporary file on disk, found %v", files(t, dir, tmpSuffix))
		}
		s, err := Open(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := s.Get(ctx, "key")
		if len(l) != 1 || !bytes.Equal(l[0].Body, pattern("key", 1, 1<<20)) {
			t.Fatalf("after the crash: %d entries; want the previous whole version", len(l))
		}
		if len(files(t, dir, tmpSuffix)) != 0 {
			t.Fatal("the restart left the temporary file behind")
		}
	})
	t.Run("killed at an arbitrary point of a write loop", func(t *testing.T) {
		served := 0
		for round := range 3 {
			dir := t.TempDir()
			crashChild(t, dir, "loop", time.Duration(50+round*70)*time.Millisecond)
			s, err := Open(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 7 {
				k := "k" + strconv.Itoa(i)
				l, _ := s.Get(ctx, k)
				for _, e := range l {
					// Every byte follows from the first: one write's body, whole.
					n := len(e.Body) - 64<<10
					ok := n >= 0 && n < 5000
					for j := 0; ok && j < len(e.Body); j++ {
						ok = e.Body[j] == e.Body[0]+byte(j%251)
					}
					if !ok {
						t.Fatalf("round %d: %s served a torn or mixed body", round, k)
					}
					served++
				}
			}
		}
		if served == 0 {
			t.Fatal("no entry survived any round; the check above checked nothing")
		}
	})
}

// TestSurvivesRestart: a server with a disk cache is stopped and a new one started on the
// same directory: the first request is a HIT without reaching the upstream.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "from upstream "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	src := `
port: 8080
proxy:
  /:
    targets: ["` + up.URL + `"]
    cache: {store: "disk:` + dir + `", ttlSecs: 600, maxSizeMb: 1}
`
	get := func(srv *servertest.Server) (string, string) {
		// Both servers are asked for one URL: the test listeners' ports differ, and the
		// authority (with its port) is part of the key.
		req, _ := http.NewRequest(http.MethodGet, srv.URL(8080)+"/doc", nil)
		req.Host = "docs.test:8080"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("X-Cache"), string(b)
	}
	a := servertest.Start(t, src)
	if xc, _ := get(a); xc != "MISS" {
		t.Fatalf("first: %q", xc)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(files(t, dir, entrySuffix)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the entry never reached the disk")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = a.Shutdown(sctx)
	cancel()
	b := servertest.Start(t, src)
	xc, body := get(b)
	if xc != "HIT" || body != "from upstream /doc" || hits.Load() != 1 {
		t.Fatalf("after restart: %q %q, upstream %d", xc, body, hits.Load())
	}
}

func TestFactoryRejectsRelativePath(t *testing.T) {
	_, d, err := servertest.Build(`{"sites": [{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:1"], "cache": {"store": "disk:relative/dir"}}}}]}`, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !d.HasErrors() || d.Errors()[0].Path != "sites[0].proxy./.cache.store" || !strings.Contains(d.Errors()[0].Message, "absolute directory") {
		t.Fatalf("diagnostics %v", d.Errors())
	}
}
