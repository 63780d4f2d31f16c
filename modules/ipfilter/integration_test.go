package ipfilter_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/ipfilter"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func TestDenyAllowThroughServer(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
sites:
  - port: 8080
    proxy: "`+up.URL+`"
    ipFilter: {deny: ["127.0.0.0/8"]}
  - port: 8081
    proxy: "`+up.URL+`"
    ipFilter: {allow: ["10.0.0.0/8", "::ffff:127.0.0.1"]}
  - port: 8082
    proxy: "`+up.URL+`"
    ipFilter: {allow: ["10.0.0.0/8"]}
  - port: 8083
    proxy: "`+up.URL+`"
    ipFilter: {deny: ["127.0.0.1"], dryRun: true}
`)
	// Denied: empty 403 for plain clients, the JSON body for JSON clients.
	r := servertest.Get(t, srv.URL(8080)+"/")
	if r.Status != 403 || r.Body != "" {
		t.Fatalf("deny: %d %q, want empty 403", r.Status, r.Body)
	}
	r = servertest.Get(t, srv.URL(8080)+"/", "Accept", "application/json")
	if r.Status != 403 || r.Header.Get("Content-Type") != "application/json" || r.Body != `{"error":"Forbidden","status":403}` {
		t.Fatalf("deny JSON: %d %q %q", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	// The health endpoint is not filtered.
	if r := servertest.Get(t, srv.URL(8080)+"/__health__"); r.Status != 200 {
		t.Errorf("/__health__ on a denying site: %d, want 200", r.Status)
	}
	// An IPv4-mapped allow entry matches the IPv4 client.
	if r := servertest.Get(t, srv.URL(8081)+"/"); r.Status != 200 {
		t.Errorf("allow ::ffff:127.0.0.1: %d, want 200", r.Status)
	}
	if r := servertest.Get(t, srv.URL(8082)+"/"); r.Status != 403 {
		t.Errorf("client outside allow: %d, want 403", r.Status)
	}
	if r := servertest.Get(t, srv.URL(8083)+"/"); r.Status != 200 {
		t.Errorf("dryRun: %d, want 200", r.Status)
	}
	if got := srv.Metrics().Counter("conduit_ip_filter_denied_total", "", "site").With("*").Value(); got != 3 {
		t.Errorf("denied counter %v, want 3", got)
	}
}

func TestTrustProxy(t *testing.T) {
	up := upstream(t)
	srv := servertest.Start(t, `
sites:
  - port: 8080
    proxy: "`+up.URL+`"
    ipFilter: {deny: ["203.0.113.0/24"], trustProxy: true}
  - port: 8081
    proxy: "`+up.URL+`"
    ipFilter: {deny: ["203.0.113.0/24"]}
  - port: 8082
    proxy: "`+up.URL+`"
    ipFilter: {deny: ["203.0.113.0/24"], trustProxy: ["192.0.2.0/24"]}
`)
	tests := []struct {
		port int
		xff  []string
		want int
	}{
		{8080, []string{"203.0.113.7"}, 403},
		{8080, []string{"198.51.100.1"}, 200},
		{8080, []string{"203.0.113.7, 10.0.0.1"}, 403},       // internal hop skipped
		{8080, []string{"203.0.113.7, 198.51.100.1"}, 200},   // rightmost untrusted is the client; the spoofable left part is not
		{8080, []string{"203.0.113.7", "198.51.100.1"}, 200}, // several lines read in order
		{8081, []string{"203.0.113.7"}, 200},                 // trustProxy off: the header is ignored
		{8082, []string{"203.0.113.7"}, 200},                 // the peer 127.0.0.1 is not a listed proxy
	}
	for _, tt := range tests {
		var hdr []string
		for _, v := range tt.xff {
			hdr = append(hdr, "X-Forwarded-For", v)
		}
		if r := servertest.Get(t, srv.URL(tt.port)+"/", hdr...); r.Status != tt.want {
			t.Errorf("port %d XFF %q: %d, want %d", tt.port, tt.xff, r.Status, tt.want)
		}
	}
}

func admin(t *testing.T, srv *servertest.Server, method, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	servertest.AdminHandler(t, srv.Current(), method, "/ip-deny").ServeHTTP(rec, httptest.NewRequest(method, "/ip-deny", strings.NewReader(body)))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s /ip-deny: %q: %v", method, rec.Body.String(), err)
	}
	return rec.Code, out
}

// TestRuntimeDenyList: POST /ip-deny blocks on every site (with or without ipFilter),
// survives a reload, and DELETE lifts it.
func TestRuntimeDenyList(t *testing.T) {
	up := upstream(t)
	src := `
sites:
  - port: 8080
    proxy: "` + up.URL + `"
  - port: 8081
    proxy: "` + up.URL + `"
    ipFilter: {deny: ["198.51.100.0/24"]}
`
	srv := servertest.Start(t, src)
	for _, p := range []int{8080, 8081} {
		if r := servertest.Get(t, srv.URL(p)+"/"); r.Status != 200 {
			t.Fatalf("port %d before: %d", p, r.Status)
		}
	}
	code, out := admin(t, srv, http.MethodPost, `{"cidr":"::ffff:127.0.0.1"}`)
	if code != 200 || out["status"] != "ok" || out["action"] != "added" || out["cidr"] != "127.0.0.1/32" {
		t.Fatalf("POST /ip-deny: %d %v", code, out)
	}
	for _, p := range []int{8080, 8081} {
		if r := servertest.Get(t, srv.URL(p)+"/"); r.Status != 403 {
			t.Errorf("port %d after POST: %d, want 403", p, r.Status)
		}
	}
	// Reload: the list stays.
	srv.Reload(t, src)
	if r := servertest.Get(t, srv.URL(8080)+"/"); r.Status != 403 {
		t.Errorf("after reload: %d, want 403 (the runtime list survives reloads)", r.Status)
	}
	rec := httptest.NewRecorder()
	servertest.AdminHandler(t, srv.Current(), http.MethodGet, "/ip-deny").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ip-deny", nil))
	if !strings.Contains(rec.Body.String(), `"127.0.0.1/32"`) {
		t.Errorf("GET /ip-deny = %s", rec.Body.String())
	}
	code, out = admin(t, srv, http.MethodDelete, `{"cidr":"127.0.0.1"}`)
	if code != 200 || out["action"] != "removed" {
		t.Fatalf("DELETE /ip-deny: %d %v", code, out)
	}
	if r := servertest.Get(t, srv.URL(8080)+"/"); r.Status != 200 {
		t.Errorf("after DELETE: %d, want 200", r.Status)
	}
	for _, bad := range []string{`{"cidr":"10.0.0.0/33"}`, `{"cidr":""}`, `not json`} {
		if code, out := admin(t, srv, http.MethodPost, bad); code != 400 || out["status"] != "error" {
			t.Errorf("POST %s: %d %v, want 400", bad, code, out)
		}
	}
}

// TestValidation: the validator corpus's ipFilter sites, at exact paths.
func TestValidation(t *testing.T) {
	tests := []struct {
		src      string
		errPaths []string
		warnPath string
	}{
		{`{deny: ["999.999.0.0/8", "not-an-ip"]}`, []string{"ipFilter.deny[0]", "ipFilter.deny[1]"}, ""},
		{`{allow: ["10.0.0.0/8", "192.168.1.1", "::1", "2001:db8::/32"]}`, nil, ""},
		{`{deny: ["10.0.0.0/33"]}`, []string{"ipFilter.deny[0]"}, ""},
		{`{deny: ["10.0.0.0/abc"]}`, []string{"ipFilter.deny[0]"}, ""},
		{`{deny: ["::1/128"]}`, nil, ""},
		{`{deny: ["::1/129"]}`, []string{"ipFilter.deny[0]"}, ""},
		{`{allow: ["192.168.1.100"]}`, nil, ""},
		{`{allow: ["2001:db8::1"]}`, nil, ""},
		{`{deny: ["10.0.0.1/8"]}`, nil, "ipFilter.deny[0]"},
		{`{trustProxy: "yes"}`, []string{"ipFilter.trustProxy"}, ""},
		{`{trustProxy: ["10.0.0.0/8", "bogus"]}`, []string{"ipFilter.trustProxy[1]"}, ""},
		{`{allow: ["10.0.0.0/8"], deny: ["10.1.0.0/16"]}`, nil, "ipFilter.deny"},
		{`{alow: ["10.0.0.0/8"]}`, nil, "ipFilter.alow"},
	}
	for _, tt := range tests {
		_, d, err := servertest.Build("sites:\n  - port: 9000\n    ipFilter: "+tt.src+"\n", config.FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range d.Errors() {
			got = append(got, strings.TrimPrefix(e.Path, "sites[0]."))
		}
		if strings.Join(got, ",") != strings.Join(tt.errPaths, ",") {
			t.Errorf("%s: error paths %v, want %v (%v)", tt.src, got, tt.errPaths, d.Errors())
		}
		if tt.warnPath != "" {
			found := false
			for _, w := range d.Warnings() {
				found = found || w.Path == "sites[0]."+tt.warnPath
			}
			if !found {
				t.Errorf("%s: no warning at %s (%v)", tt.src, tt.warnPath, d.Warnings())
			}
		}
	}
}
