package metrics_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/metrics"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, _ := io.ReadAll(r)
	return resp, string(b)
}

func TestScrapeThroughRealServer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - port: 8080
    metrics: { token: "scrape-me" }
    proxy:
      /api: { targets: [%q] }
  - port: 8081
    proxy: %q
`, up.URL, up.URL))

	for _, p := range []string{"/api/a", "/api/b", "/api/fail", "/nowhere"} {
		get(t, srv.URL(8080)+p, nil)
	}
	get(t, srv.URL(8081)+"/not-measured", nil) // a site without `metrics` records nothing

	resp, _ := get(t, srv.URL(8080)+"/__metrics__", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("without token: %d", resp.StatusCode)
	}
	resp, body := get(t, srv.URL(8080)+"/__metrics__?x=1", map[string]string{"Authorization": "BEARER scrape-me", "Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("scrape not compressed: %v", resp.Header)
	}
	for _, want := range []string{
		`conduit_requests_total{method="GET",status="200"} 2`,
		`conduit_requests_total{method="GET",status="503"} 1`,
		`conduit_requests_total{method="GET",status="404"} 1`,
		`conduit_requests_by_protocol_total{protocol="1.1"} 5`, // with the scrape refused 401
		`conduit_request_duration_seconds_bucket{method="GET",status="200",le="0.001"}`,
		`conduit_request_duration_seconds_bucket{method="GET",status="200",le="5"}`,
		`conduit_request_duration_seconds_count{method="GET",status="200"} 2`,
		"conduit_active_connections 1", // the scrape itself is in flight
		fmt.Sprintf(`conduit_upstream_requests_total{upstream=%q,status="200"} 2`, up.URL),
		fmt.Sprintf(`conduit_upstream_requests_total{upstream=%q,status="503"} 1`, up.URL),
		fmt.Sprintf(`conduit_upstream_latency_seconds_count{upstream=%q} 3`, up.URL),
		`conduit_upstream_errors_total{route="/api",status="503"} 1`,
		"# TYPE conduit_request_duration_seconds histogram",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(body, "/nowhere") || strings.Contains(body, "/api/a") || strings.Contains(body, "not-measured") {
		t.Errorf("raw paths leaked into labels")
	}
	if t.Failed() {
		t.Log(body)
	}

	// The site without `metrics` has no endpoint.
	if _, body := get(t, srv.URL(8081)+"/__metrics__", nil); body != "ok" {
		t.Errorf("site without metrics answers the metrics path itself: %.60q", body)
	}
}

func TestCustomPath(t *testing.T) {
	srv := servertest.Start(t, "port: 8080\nmetrics: { path: /internal/m }\n")
	if resp, body := get(t, srv.URL(8080)+"/internal/m", nil); resp.StatusCode != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("custom path: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL(8080)+"/__metrics__", nil); resp.StatusCode == 200 {
		t.Fatal("default path still answers")
	}
}

// TestValidatorsSink checks the fixture's metrics sites: `path: metrics` and `token: ""` are
// errors at their exact paths, `path: /__metrics__` is fine.
func TestValidatorsSink(t *testing.T) {
	data, err := os.ReadFile("../../testdata/compat/validators_sink.json")
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := servertest.Build(string(data), config.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range d.Errors() {
		if strings.Contains(e.Path, ".metrics") {
			got = append(got, e.Path)
		}
	}
	doc, _ := config.Parse(data, config.FormatJSON, nil)
	var want []string
	for i, s := range doc.Sites {
		m, ok := s["metrics"].(map[string]config.Node)
		if !ok {
			continue
		}
		if p, ok := m["path"].(string); ok && !strings.HasPrefix(p, "/") {
			want = append(want, doc.SitePath(i)+".metrics.path")
		}
		if tok, ok := m["token"].(string); ok && tok == "" {
			want = append(want, doc.SitePath(i)+".metrics.token")
		}
	}
	if len(want) != 2 {
		t.Fatalf("fixture changed: expected two bad metrics sites, found %v", want)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("metrics errors at %v; want %v", got, want)
	}
}
