package ratelimit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/ratelimit"
)

func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

// statuses sends n requests and returns how many got each status.
func statuses(t *testing.T, n int, url string, hdr ...string) map[int]int {
	t.Helper()
	out := map[int]int{}
	for range n {
		out[servertest.Get(t, url, hdr...).Status]++
	}
	return out
}

func rejectedTotal(srv *servertest.Server, site string) float64 {
	return srv.Metrics().Counter("conduit_rate_limit_rejected_total", "", "site").With(site).Value()
}

func TestSiteLimit429(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
port: 8080
proxy: "`+up.URL+`"
rateLimit:
  windowSecs: 60
  limit: 3
  burst: 1
`)
	base := srv.URL(8080)
	for i := range 4 {
		r := servertest.Get(t, base+"/x")
		if r.Status != 200 {
			t.Fatalf("request %d: status %d, want 200 (limit 3 + burst 1)", i, r.Status)
		}
		if r.Header.Get("RateLimit-Limit") != "" {
			t.Fatalf("allowed response carries RateLimit headers without headers: true")
		}
	}
	r := servertest.Get(t, base+"/x")
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("5th request: status %d, want 429", r.Status)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 19 || ra > 20 {
		t.Errorf("Retry-After %q, want 20 seconds (one token every 60/3 s)", r.Header.Get("Retry-After"))
	}
	if r.Header.Get("RateLimit-Limit") != "3" || r.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Limit %q Remaining %q, want 3 and 0", r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Remaining"))
	}
	if reset, err := strconv.Atoi(r.Header.Get("RateLimit-Reset")); err != nil || reset < 79 || reset > 80 {
		t.Errorf("RateLimit-Reset %q, want 80 s (4 tokens × 20 s)", r.Header.Get("RateLimit-Reset"))
	}
	if r.Header.Get("X-Upstream") != "" {
		t.Error("a refused request reached the upstream")
	}
	rj := servertest.Get(t, base+"/x", "Accept", "application/json")
	if rj.Status != 429 || rj.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON client: status %d type %q", rj.Status, rj.Header.Get("Content-Type"))
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(rj.Body), &body); err != nil || body["status"] != float64(429) || body["error"] != "Too Many Requests" {
		t.Errorf("429 JSON body %q", rj.Body)
	}
	if got := rejectedTotal(srv, "*"); got != 2 {
		t.Errorf("conduit_rate_limit_rejected_total{site=\"*\"} = %v, want 2", got)
	}
}

func TestKeyByHeaderAndSkipPaths(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
port: 8080
proxy: "`+up.URL+`"
rateLimit:
  windowSecs: 60
  limit: 2
  keyBy: "header:X-User-ID"
  headers: true
  skipPaths: ["/__free__", "/public/**"]
`)
	base := srv.URL(8080)
	if got := statuses(t, 3, base+"/a", "X-User-ID", "alice"); got[200] != 2 || got[429] != 1 {
		t.Fatalf("alice: %v, want 2×200 1×429", got)
	}
	// bob has his own bucket, and sees the headers on allowed responses.
	r := servertest.Get(t, base+"/a", "X-User-ID", "bob")
	if r.Status != 200 || r.Header.Get("RateLimit-Limit") != "2" || r.Header.Get("RateLimit-Remaining") != "1" {
		t.Fatalf("bob: status %d limit %q remaining %q", r.Status, r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Remaining"))
	}
	// Without the header the client IP is the key: a separate bucket from alice and bob.
	if got := statuses(t, 3, base+"/a"); got[200] != 2 || got[429] != 1 {
		t.Fatalf("no header: %v, want 2×200 1×429", got)
	}
	// skipPaths spend nothing, even for an exhausted key.
	for _, p := range []string{"/__free__", "/public", "/public/", "/public/x/y"} {
		if r := servertest.Get(t, base+p, "X-User-ID", "alice"); r.Status != 200 {
			t.Errorf("%s: status %d, want 200 (skipPaths)", p, r.Status)
		}
	}
	if r := servertest.Get(t, base+"/publicx", "X-User-ID", "alice"); r.Status != 429 {
		t.Errorf("/publicx: status %d, want 429 (not under /public/**)", r.Status)
	}
}

func TestDryRun(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
port: 8080
proxy: "`+up.URL+`"
rateLimit: {windowSecs: 60, limit: 1, dryRun: true}
`)
	if got := statuses(t, 5, srv.URL(8080)+"/"); got[200] != 5 {
		t.Fatalf("dryRun: %v, want 5×200", got)
	}
	if got := rejectedTotal(srv, "*"); got != 0 {
		t.Errorf("rejected %v under dryRun, want 0", got)
	}
	if got := srv.Metrics().Counter("conduit_rate_limit_dry_run_total", "", "site").With("*").Value(); got != 4 {
		t.Errorf("dry-run counter %v, want 4", got)
	}
}

// TestRouteLevel: a proxy route's limit applies after routing, only to its route, and both
// the site and the route limits must pass.
func TestRouteLevel(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
port: 8080
rateLimit: {windowSecs: 60, limit: 5}
proxy:
  /api:
    targets: ["`+up.URL+`"]
    rateLimit: {windowSecs: 60, limit: 2}
  /web: "`+up.URL+`"
routes:
  - match: {path: "/r/**"}
    proxy:
      targets: ["`+up.URL+`"]
      rateLimit: {windowSecs: 60, limit: 1}
`)
	base := srv.URL(8080)
	if got := statuses(t, 3, base+"/api/x"); got[200] != 2 || got[429] != 1 {
		t.Fatalf("/api: %v, want 2×200 1×429", got)
	}
	if got := statuses(t, 2, base+"/r/x"); got[200] != 1 || got[429] != 1 {
		t.Fatalf("/r: %v, want 1×200 1×429", got)
	}
	// The site limit (5) has seen 5 requests: 2 + 1 routed to /api, 1 + 1 to /r … the
	// refused /api and /r requests still spent site tokens (the site stage runs first).
	if r := servertest.Get(t, base+"/web/"); r.Status != 429 {
		t.Fatalf("/web after 5 requests: status %d, want 429 from the site limit", r.Status)
	}
	stats := adminStats(t, srv)
	want := map[string]map[string][2]int64{"*": {"*": {5, 1}, "/api": {2, 1}, "routes[0]": {1, 1}}}
	for site, routes := range want {
		for route, pr := range routes {
			got := stats[site][route]
			if got.Passed != pr[0] || got.Rejected != pr[1] {
				t.Errorf("GET /rate-limits %s %s = %+v, want passed %d rejected %d (all: %v)", site, route, got, pr[0], pr[1], stats)
			}
		}
	}
}

type pr struct {
	Passed   int64 `json:"passed"`
	Rejected int64 `json:"rejected"`
}

// adminStats calls the GET /rate-limits endpoint the module contributes to the Admin API.
func adminStats(t *testing.T, srv *servertest.Server) map[string]map[string]pr {
	t.Helper()
	h := servertest.AdminHandler(t, srv.Current(), http.MethodGet, "/rate-limits")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/rate-limits", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /rate-limits: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var out map[string]map[string]pr
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("GET /rate-limits body %q: %v", rec.Body.String(), err)
	}
	return out
}

// TestReloadResetsBuckets: a new generation starts with full buckets and zero counters
// (docs/rate-limiting.md).
func TestReloadResetsBuckets(t *testing.T) {
	up := upstream(t)
	src := `
port: 8080
proxy: "` + up.URL + `"
rateLimit: {windowSecs: 60, limit: 1}
`
	srv := servertest.Start(t, src)
	if got := statuses(t, 2, srv.URL(8080)+"/"); got[429] != 1 {
		t.Fatalf("before reload: %v", got)
	}
	srv.Reload(t, src)
	if r := servertest.Get(t, srv.URL(8080)+"/"); r.Status != 200 {
		t.Fatalf("after reload: status %d, want 200 (fresh buckets)", r.Status)
	}
	if s := adminStats(t, srv)["*"]["*"]; s.Passed != 1 || s.Rejected != 0 {
		t.Errorf("stats after reload %+v, want passed 1 rejected 0", s)
	}
}

// TestValidation checks the diagnostics of the validator corpus's rateLimit sites and of the
// rules this module adds, at their exact paths.
func TestValidation(t *testing.T) {
	tests := []struct {
		name, src string
		errPath   string // "" when the config must be valid
		errText   string
		warnPath  string
		warnText  string
	}{
		{"window 0", `{windowSecs: 0, limit: 100}`, "rateLimit.windowSecs", "must be ≥ 1", "", ""},
		{"limit 0", `{windowSecs: 60, limit: 0}`, "rateLimit.limit", "must be ≥ 1", "", ""},
		{"window missing", `{limit: 100}`, "rateLimit.windowSecs", "is required", "", ""},
		{"negative burst", `{windowSecs: 1, limit: 1, burst: -1}`, "rateLimit.burst", "non-negative", "", ""},
		{"algorithm typo", `{windowSecs: 60, limit: 100, algorithm: leaky-bucket}`, "rateLimit.algorithm", `must be "token-bucket"`, "", ""},
		{"algorithm ok", `{windowSecs: 60, limit: 100, algorithm: token-bucket}`, "", "", "", ""},
		{"keyBy ip", `{windowSecs: 60, limit: 100, keyBy: ip}`, "", "", "", ""},
		{"keyBy header", `{windowSecs: 60, limit: 100, keyBy: "header:X-User-ID"}`, "", "", "", ""},
		{"keyBy bad header name", `{windowSecs: 60, limit: 100, keyBy: "header:bad name"}`, "rateLimit.keyBy", `"ip" or "header:<Name>"`, "", ""},
		{"keyBy header without name", `{windowSecs: 60, limit: 100, keyBy: header}`, "rateLimit.keyBy", `"ip" or "header:<Name>"`, "", ""},
		{"keyBy cookie", `{windowSecs: 60, limit: 100, keyBy: cookie}`, "rateLimit.keyBy", `"ip" or "header:<Name>"`, "", ""},
		{"store memory", `{windowSecs: 60, limit: 100, store: memory}`, "", "", "", ""},
		{"store redis not compiled", `{windowSecs: 60, limit: 100, store: "redis://:pw@127.0.0.1:6379"}`, "", "", "rateLimit.store", `needs feature "redis"`},
		{"store other scheme", `{windowSecs: 60, limit: 100, store: "memcached://x"}`, "rateLimit.store", `must be "memory"`, "", ""},
		{"onStoreError typo", `{windowSecs: 60, limit: 100, onStoreError: open}`, "rateLimit.onStoreError", `"memory", "allow" or "deny"`, "", ""},
		{"onStoreError with memory", `{windowSecs: 60, limit: 100, onStoreError: deny}`, "", "", "rateLimit.onStoreError", "no effect"},
		{"skipPaths relative", `{windowSecs: 60, limit: 100, skipPaths: [health]}`, "rateLimit.skipPaths[0]", `must start with "/"`, "", ""},
		// One skipPaths rule for every module (core/skippaths): another "*" is literal, with a warning.
		{"skipPaths inner glob", `{windowSecs: 60, limit: 100, skipPaths: ["/a/*/b"]}`, "", "", "rateLimit.skipPaths[0]", "trailing"},
		{"unknown key", `{windowSecs: 60, limit: 100, limt: 3}`, "", "", "rateLimit.limt", `did you mean "limit"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d, err := servertest.Build("sites:\n  - port: 8080\n    rateLimit: "+tt.src+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if tt.errPath != "" {
				checkDiag(t, d, "sites[0]."+tt.errPath, tt.errText, false)
			} else {
				for _, e := range d.Errors() {
					if strings.HasPrefix(e.Path, "sites[0].rateLimit") {
						t.Errorf("unexpected error %s: %s", e.Path, e.Message)
					}
				}
			}
			if tt.warnPath != "" {
				checkDiag(t, d, "sites[0]."+tt.warnPath, tt.warnText, true)
			}
			if tt.warnPath == "" && tt.errPath == "" {
				for _, w := range d.Warnings() {
					if strings.Contains(w.Path, "rateLimit") {
						t.Errorf("unexpected warning %s: %s", w.Path, w.Message)
					}
				}
			}
		})
	}
}

func TestRouteValidation(t *testing.T) {
	_, d, err := servertest.Build(`
port: 8080
proxy:
  /api:
    targets: ["http://127.0.0.1:1"]
    rateLimit: {windowSecs: 60, limit: 1, dryRun: true}
routes:
  - match: {path: /r}
    proxy:
      targets: ["http://127.0.0.1:1"]
      rateLimit: {windowSecs: 60, limit: 0}
`, config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	checkDiag(t, d, "proxy./api.rateLimit.dryRun", "not allowed on a route", false)
	checkDiag(t, d, "routes[0].proxy.rateLimit.limit", "must be ≥ 1", false)
}

func checkDiag(t *testing.T, d *config.Diagnostics, path, text string, warning bool) {
	t.Helper()
	list := d.Errors()
	if warning {
		list = d.Warnings()
	}
	for _, e := range list {
		if e.Path == path && strings.Contains(e.Message, text) {
			if strings.Contains(e.Message, "pw@") {
				t.Errorf("diagnostic leaks the store password: %s", e.Message)
			}
			return
		}
	}
	t.Errorf("no diagnostic at %s containing %q; got errors %v warnings %v", path, text, d.Errors(), d.Warnings())
}
