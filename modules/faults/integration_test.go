package faults_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/faults"
	_ "github.com/conduitproxy/conduit/modules/health"
)

func TestFaultsThroughTheServer(t *testing.T) {
	srv := servertest.Start(t, `
sites:
  - port: 8080
    faultInjection:
      abort: {percent: 100, status: 502, body: "chaos"}
  - port: 8081
    faultInjection:
      abort: {percent: 0}
      headerTrigger: true
`)
	get := func(url string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for i := 0; i < 20; i++ {
		if code, body := get(srv.URL(8080) + "/x"); code != 502 || body != "chaos" {
			t.Fatalf("100%% = %d %q", code, body)
		}
		if code, _ := get(srv.URL(8081) + "/x"); code != 404 {
			t.Fatalf("0%% = %d", code)
		}
	}
	if code, _ := get(srv.URL(8081)+"/x", "X-Conduit-Fault", "abort"); code != 503 {
		t.Fatalf("header trigger = %d", code)
	}
	// The health endpoint answers before the guards and faults.
	if code, _ := get(srv.URL(8080) + "/__health__"); code != 200 {
		t.Fatalf("health = %d", code)
	}
}
