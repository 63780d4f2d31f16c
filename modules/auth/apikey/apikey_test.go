package apikey_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/apikey"
	"github.com/conduitproxy/conduit/modules/auth/internal/authtest"
	"github.com/conduitproxy/conduit/modules/auth/internal/authutil"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func TestAPIKey(t *testing.T) {
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
apiKey: { keys: [key-one-0123456789, "key two+/="], skipPaths: [/open] }
proxy: %q
`, up.URL))
	custom := servertest.Start(t, fmt.Sprintf("port: 8080\napiKey: { keys: [k-0123456789], header: Authorization-Key }\nproxy: %q\n", up.URL))
	for _, tc := range []struct {
		url     string
		headers []string
		want    int
	}{
		{"/x", []string{"X-API-Key: key-one-0123456789"}, 200},
		{"/x", []string{"x-api-key: key two+/="}, 200},
		{"/x?api_key=key-one-0123456789", nil, 200},
		{"/x?a=1&api_key=key%20two%2B%2F%3D", nil, 200},
		{"/x?api_key=key+two%2B%2F%3D", nil, 200},
		{"/x", []string{"X-API-Key: key-one-012345678"}, 401},
		{"/x", []string{"X-API-Key: "}, 401},
		{"/x?api_key=", nil, 401},
		{"/x?apikey=key-one-0123456789", nil, 401},
		// A wrong header key is not rescued by a right query key: the header decides.
		{"/x?api_key=key-one-0123456789", []string{"X-API-Key: wrong"}, 401},
		{"/x", nil, 401},
		{"/open", nil, 200},
	} {
		if r := authtest.Get(t, srv.URL(8080)+tc.url, tc.headers...); r.Status != tc.want {
			t.Errorf("%s %v: %d, want %d", tc.url, tc.headers, r.Status, tc.want)
		}
	}
	if r := authtest.Get(t, custom.URL(8080)+"/", "Authorization-Key: k-0123456789"); r.Status != 200 {
		t.Errorf("custom header: %d", r.Status)
	}
	if r := authtest.Get(t, custom.URL(8080)+"/", "X-API-Key: k-0123456789"); r.Status != 401 {
		t.Errorf("default header with a custom one configured: %d", r.Status)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"missing", `apiKey: {}`, "error at apiKey.keys: is required"},
		{"empty list", `apiKey: { keys: [] }`, "error at apiKey.keys: must hold at least one key"},
		{"empty key", `apiKey: { keys: [""] }`, "error at apiKey.keys[0]: must not be empty"},
		{"bad header", `apiKey: { keys: [k], header: "X API" }`, "error at apiKey.header: must be a valid header name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\n"+tc.cfg+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if e := d.Err(); e == nil || !strings.Contains(e.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, e)
			}
		})
	}
}

func FuzzQueryParam(f *testing.F) {
	for _, s := range []string{"api_key=a", "a=1&api_key=%41", "api%5Fkey=x", "api_key=%zz&api_key=b", "&&=", "api_key"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, ok := authutil.QueryParam(raw, "api_key")
		if !ok && v != "" {
			t.Fatalf("value without ok: %q", v)
		}
		if ok && !strings.Contains(raw, "=") && v != "" {
			t.Fatalf("value from a query with no '=': %q", v)
		}
	})
}
