package script_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// versioned is a script whose response header names its version and counts how many times
// its constructor ran in this interpreter (a package variable lives as long as the
// compiled program).
const versioned = `package versioned

import (
	"net/http"
	"strconv"
)

var builds int

func Middleware(next http.Handler) http.Handler {
	builds++
	n := strconv.Itoa(builds)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", "%s")
		w.Header().Set("X-Builds", n)
		next.ServeHTTP(w, r)
	})
}
`

// TestReload: an unchanged script is reused across a reload, a changed one is compiled
// again, a broken one is refused and the running generation keeps serving; no request
// fails while reloads happen under load.
func TestReload(t *testing.T) {
	up := echo(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "versioned.go")
	write := func(src string) {
		if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(versioned, "1"))
	cfg := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(cfg, []byte(site(up.URL, "  - {type: script, path: "+script+"}\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := servertest.StartFile(t, cfg)
	url := srv.URL(8080) + "/r"
	check := func(version, builds string) {
		t.Helper()
		rep := servertest.Get(t, url)
		if rep.Status != 200 || rep.Header.Get("X-Version") != version || rep.Header.Get("X-Builds") != builds {
			t.Fatalf("got %d version %q builds %q, want %s %s", rep.Status, rep.Header.Get("X-Version"), rep.Header.Get("X-Builds"), version, builds)
		}
	}
	check("1", "1")

	// Load while reloading: every request must succeed.
	client := &http.Client{Timeout: 5 * time.Second}
	stop := servertest.Load(4, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	reload := func() error {
		_, err := srv.Server.Reload(context.Background())
		return err
	}
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	check("1", "2") // same content: the compiled program is reused
	write(fmt.Sprintf(versioned, "2"))
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	check("2", "1") // new content: compiled again
	write("package versioned\n\nfunc Middleware( {\n")
	if err := reload(); err == nil {
		t.Fatal("a reload with a broken script succeeded")
	}
	check("2", "1") // the running generation stays
	time.Sleep(100 * time.Millisecond)
	if res := stop(); res.Failed != 0 || res.Sent == 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %s", res.Failed, res.Sent, res.First)
	}
}
