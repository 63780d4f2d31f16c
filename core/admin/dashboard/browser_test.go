package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// artifactDir is where the browser test keeps its screenshots: $CONDUIT_ARTIFACTS/dashboard
// when set (CI keeps that directory), else the test's temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("CONDUIT_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "dashboard")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageWatch records what the page does that the test forbids: console errors and warnings,
// uncaught exceptions, and requests to any origin but the Admin API's.
type pageWatch struct {
	mu       sync.Mutex
	origin   string
	problems []string
}

func (p *pageWatch) add(s string) {
	p.mu.Lock()
	p.problems = append(p.problems, s)
	p.mu.Unlock()
}

// console records a console message that is an error, a warning or an exception. The login
// form is the 401 answer of /dashboard/ (nothing under the dashboard answers without the
// token), which the browser logs as a failed load; that one entry is expected.
func (p *pageWatch) console(m chromedp.ConsoleMessage) {
	if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleWarning && !m.IsException() {
		return
	}
	if m.Source == "network" && m.URL == p.origin+"/dashboard/" && strings.Contains(m.Text, "401") {
		return
	}
	p.add(fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
}

// request records a request to another origin.
func (p *pageWatch) request(ev any) {
	if e, ok := ev.(*network.EventRequestWillBeSent); ok && !strings.HasPrefix(e.Request.URL, p.origin+"/") {
		p.add("request to another origin: " + e.Request.URL)
	}
}

func (p *pageWatch) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// TestDashboardInBrowser drives Debian's chromium against a real Conduit with two real
// upstreams and live traffic: log in, watch a route's rate rise, see a stopped upstream go
// unhealthy, see a tapped request with its headers redacted, pause, resume and filter the
// tap, reload from the page, drain an
// upstream from the page, and keep screenshots. The page may not log an error or reach anything but the Admin API.
func TestDashboardInBrowser(t *testing.T) {
	chromium := testtool.Find(t, "chromium", ".ci/deps.sh (Debian package chromium)")

	upA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "upstream-secret=1")
		_, _ = w.Write([]byte("a"))
	}))
	t.Cleanup(upA.Close)
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("b")) }))
	stoppedB := false
	t.Cleanup(func() {
		if !stoppedB {
			upB.Close()
		}
	})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "conduit.yaml")
	cfg := fmt.Sprintf(`global:
  admin: { bind: "127.0.0.1:2019", token: %q }
sites:
  - port: 8080
    proxy:
      /api: { targets: [%q] }
      /b: { targets: [%q], healthCheck: { intervalSecs: 1, timeoutMs: 300, unhealthyThreshold: 1, healthyThreshold: 1 } }
`, token, upA.URL, upB.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.StartFile(t, cfgPath)
	api := servertest.StartAdmin(t, srv, nil)
	base := "http://" + api.Addr().String()
	site := srv.URL(8080)
	arts := artifactDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	// A proxy nobody listens on: any request that is not to loopback fails (and is reported),
	// so the page provably needs nothing but the binary.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc() // kills the browser process
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	watch := &pageWatch{origin: base}
	msgs := chromedp.Console(bctx) // starts the browser
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			watch.console(m)
		}
	}()
	if err := chromedp.Listen(bctx, watch.request); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the browser log: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable network events: %v", err)
	}

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(arts, name), buf, 0o644)
		})
	}
	// waitJS polls a JavaScript condition every 100 ms until it is true or ctx ends.
	waitJS := func(what, js string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			for {
				ok, err := chromedp.Evaluate[bool](js)(ctx, tg)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				if ok {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	jsAction := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](js)(ctx, tg)
			return err
		})
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v (page problems so far: %v)", step, err, watch.list())
		}
	}

	run("log in",
		chromedp.Navigate(base+"/dashboard/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		shot("login.png"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#overview dt")),
		waitJS("the overview", `document.getElementById('generation') !== null && document.getElementById('generation').textContent.startsWith('#1')`),
	)

	// Traffic: a steady stream to /api, one request to a unique path with credentials.
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var trafficDone sync.WaitGroup
	trafficDone.Add(1)
	go func() {
		defer trafficDone.Done()
		c := &http.Client{Timeout: 2 * time.Second}
		for trafficCtx.Err() == nil {
			if resp, err := c.Get(site + "/api/items"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer trafficDone.Wait()
	defer stopTraffic()

	run("route rate rises",
		waitJS("a rate above 5 req/s on /api", `(function(){var c=document.querySelector('#traffic [data-route="/api"]');return c!==null&&parseFloat(c.textContent)>5})()`),
	)
	run("tapped request",
		chromedp.Func(func(context.Context, *chromedp.Target) error {
			servertest.Get(t, site+"/api/tapped-by-the-browser-test", "Authorization", "Bearer do-not-show", "User-Agent", "dashboard-test")
			return nil
		}),
		waitJS("the tapped request", `Array.from(document.querySelectorAll('#tap summary')).some(function(s){return s.textContent.indexOf('/api/tapped-by-the-browser-test')>=0})`),
		jsAction(`(function(){var s=Array.from(document.querySelectorAll('#tap summary')).find(function(s){return s.textContent.indexOf('/api/tapped-by-the-browser-test')>=0});s.click();return true})()`),
		waitJS("its headers, redacted", `(function(){var d=Array.from(document.querySelectorAll('#tap details[open] dl')).map(function(x){return x.textContent}).join(' ');return d.indexOf('[redacted]')>=0&&d.indexOf('dashboard-test')>=0&&d.indexOf('do-not-show')<0})()`),
		shot("traffic.png"),
	)

	tapHas := func(path string) string {
		return fmt.Sprintf(`Array.from(document.querySelectorAll('#tap summary')).some(function(s){return s.textContent.indexOf(%q)>=0})`, path)
	}
	send := func(method, path string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(context.Context, *chromedp.Target) error {
			servertest.Do(t, method, site+path)
			return nil
		})
	}
	run("tap pause, resume and filter",
		chromedp.Click(chromedp.ID("tap-toggle")),
		waitJS("paused", `document.getElementById('tap-state').textContent==='paused'`),
		send("GET", "/api/sent-while-paused"),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.Click(chromedp.ID("tap-toggle")),
		waitJS("streaming again", `document.getElementById('tap-state').textContent==='streaming'`),
		chromedp.SendKeys(chromedp.CSS(`#tap-filter input[name="method"]`), "POST"),
		chromedp.Click(chromedp.CSS(`#tap-filter button[type="submit"]`)),
		waitJS("the filtered stream", `document.getElementById('tap-state').textContent==='streaming'`),
		chromedp.Sleep(200*time.Millisecond),
		send("GET", "/api/filtered-out-get"),
		send("POST", "/api/filtered-in-post"),
		waitJS("the POST", tapHas("/api/filtered-in-post")),
	)
	var leaked bool
	run("nothing the filter or the pause kept out",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			leaked, err = chromedp.Evaluate[bool](tapHas("/api/filtered-out-get")+"||"+tapHas("/api/sent-while-paused"))(ctx, tg)
			return err
		}),
	)
	if leaked {
		t.Error("the tap list shows a request sent while paused or one the method filter excludes")
	}

	upB.Close()
	stoppedB = true
	run("upstream goes unhealthy",
		waitJS("upstream B unhealthy", fmt.Sprintf(`(function(){var c=document.querySelector('#routes [data-upstream=%q]');return c!==null&&c.textContent==='unhealthy'})()`, upB.URL)),
		shot("unhealthy.png"),
	)

	// Reload from the page, after adding a route to the file.
	cfg2 := strings.Replace(cfg, "      /api:", fmt.Sprintf("      /c: { targets: [%q] }\n      /api:", upA.URL), 1)
	if err := os.WriteFile(cfgPath, []byte(cfg2), 0o600); err != nil {
		t.Fatal(err)
	}
	run("reload from the page",
		chromedp.Click(chromedp.ID("reload")),
		chromedp.WaitVisible(chromedp.ID("confirm-ok")),
		chromedp.Click(chromedp.ID("confirm-ok")),
		waitJS("the reload notice", `document.getElementById('notice').textContent.indexOf('config reloaded')>=0`),
		waitJS("generation 2", `document.getElementById('generation').textContent.startsWith('#2')`),
		waitJS("the new route", `document.getElementById('routes').textContent.indexOf('/c')>=0`),
	)
	run("drain from the page",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label="Drain %s on /c"]`, upA.URL))),
		chromedp.WaitVisible(chromedp.ID("confirm-ok")),
		chromedp.Click(chromedp.ID("confirm-ok")),
		waitJS("/c's upstream drained", `Array.from(document.querySelectorAll('#routes tr')).some(function(tr){return tr.cells[0].textContent==='/c'&&tr.cells[4].textContent==='drained'})`),
		waitJS("/api's upstream still in rotation", `Array.from(document.querySelectorAll('#routes tr')).some(function(tr){return tr.cells[0].textContent==='/api'&&tr.cells[4].textContent!=='drained'})`),
	)
	if r := servertest.Get(t, base+"/upstreams", "Authorization", "Bearer "+token); !strings.Contains(r.Body, `"drained":true`) {
		t.Errorf("GET /upstreams after the page drained /c's upstream: %s", r.Body)
	}
	run("phone width, dark",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		}),
		chromedp.Sleep(300*time.Millisecond),
		waitJS("no horizontal scroll of the page", `document.documentElement.scrollWidth <= window.innerWidth + 1`),
		shot("phone-dark.png"),
	)
	if g := srv.Current(); g.Number() != 2 {
		t.Errorf("server generation = %d after the page's reload, want 2", g.Number())
	}
	time.Sleep(200 * time.Millisecond) // let the last console events arrive
	if p := watch.list(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
	t.Logf("screenshots in %s", arts)
}
