package hotreload_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/basic"
	_ "github.com/conduitproxy/conduit/modules/compress"
	_ "github.com/conduitproxy/conduit/modules/hotreload"
	_ "github.com/conduitproxy/conduit/modules/static"
)

var client = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// TestLiveReload: the page gets the script, the script and the event stream answer before
// basic auth, and a change to a watched file in a subdirectory sends "data: reload".
func TestLiveReload(t *testing.T) {
	dir := t.TempDir()
	page := "<!DOCTYPE html><html><head><title>dev</title></head><body><h1>" + strings.Repeat("hello ", 300) + "</h1></body></html>"
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "css"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
static: %q
basicAuth:
  users:
    dev: "pw"
compression: true
hotReload:
  extensions: [html, css]
`, dir))
	base := srv.URL(8080)

	// The client script is a core endpoint: no credentials needed.
	res, err := client.Get(base + "/__hot-reload__/client.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(js), `new EventSource("/__hot-reload__")`) {
		t.Fatalf("client.js = %d %q", res.StatusCode, js)
	}

	// The page (behind auth) has the tag before </body>, also when compressed afterwards.
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.SetBasicAuth("dev", "pw")
	req.Header.Set("Accept-Encoding", "gzip")
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatalf("page not gzip (%d, %v): %v", res.StatusCode, res.Header, err)
	}
	html, _ := io.ReadAll(zr)
	_ = res.Body.Close()
	want := strings.Replace(page, "</body>", `<script src="/__hot-reload__/client.js"></script></body>`, 1)
	if string(html) != want {
		t.Fatalf("page = %.200q…", html)
	}

	// The event stream: no auth, not compressed, and a reload after a change.
	req, _ = http.NewRequest("GET", base+"/__hot-reload__", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("events = %d %v", res.StatusCode, res.Header)
	}
	awaitReload(t, eventLines(res.Body), filepath.Join(dir, "css", "app.css"))
}

// eventLines delivers the lines of an event stream, without their newline, until it ends.
func eventLines(body io.Reader) <-chan string {
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		br := bufio.NewReader(body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimRight(l, "\n")
		}
	}()
	return lines
}

// awaitReload writes file every 250 ms (the watcher starts in the background) until the
// stream says "data: reload"; it fails after 20 seconds or when the stream ends.
func awaitReload(t *testing.T, lines <-chan string, file string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("event stream closed")
			}
			if l == "data: reload" {
				return
			}
		case <-tick.C:
			if err := os.WriteFile(file, []byte(fmt.Sprintf("body{order:%d}", n)), 0o644); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("no reload event after changing a watched file")
		}
	}
}

// TestWatchesServedDirectories: the watched directories are those the static module serves
// (core.ServedDirs: the site's static in each form and routes[] static targets) and
// hotReload.watch; a change in any of them reloads, and none of them warns.
func TestWatchesServedDirectories(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string // %[1]q is the watched directory, %[2]q another one
	}{
		{"static string", "static: %[1]q"},
		{"static list", "static: [%[2]q, %[1]q]"},
		{"static prefix map", "static: { /: %[2]q, /docs: [%[1]q] }"},
		{"routes[] static target", "routes:\n  - { match: { path: /docs/** }, static: %[1]q }"},
		{"hotReload.watch", "static: %[2]q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, other := t.TempDir(), t.TempDir()
			watch := ""
			if tc.name == "hotReload.watch" {
				watch = fmt.Sprintf(", watch: [%q]", dir)
			}
			srv := servertest.Start(t, fmt.Sprintf("port: 8080\nhotReload: { extensions: [css]"+watch+" }\n"+tc.config+"\n", dir, other))
			for _, w := range srv.Diagnostics.Warnings() {
				if strings.Contains(w.Message, "nothing is watched") {
					t.Fatalf("warning: %v", w)
				}
			}
			res, err := client.Get(srv.URL(8080) + "/__hot-reload__")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = res.Body.Close() }()
			awaitReload(t, eventLines(res.Body), filepath.Join(dir, "app.css"))
		})
	}
}

func TestHotReloadWithoutDirectoriesWarns(t *testing.T) {
	srv := servertest.Start(t, "port: 8080\nhotReload: true\n")
	found := false
	for _, w := range srv.Diagnostics.Warnings() {
		found = found || (w.Path == "hotReload" && strings.Contains(w.Message, "nothing is watched"))
	}
	if !found {
		t.Fatalf("warnings: %v", srv.Diagnostics.Warnings())
	}
	res, err := client.Get(srv.URL(8080) + "/__hot-reload__/client.js")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("client.js = %d", res.StatusCode)
	}
}

// TestShutdownEndsOpenStreams: a graceful shutdown with a browser tab connected does not wait
// out shutdownTimeoutSecs; the stream ends and the server stops.
func TestShutdownEndsOpenStreams(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, fmt.Sprintf("global: { shutdownTimeoutSecs: 300 }\nsites:\n  - port: 8080\n    static: %q\n    hotReload: true\n", dir))
	res, err := client.Get(srv.URL(8080) + "/__hot-reload__")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("shutdown waited for the open event stream")
	}
	if _, err := io.ReadAll(res.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("stream ended with %v", err)
	}
}
