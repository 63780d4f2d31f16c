package consumers_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/consumers"
	"github.com/conduitproxy/conduit/modules/auth/internal/authtest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

type joseFile struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	Secret   string `json:"secret"`
	Tokens   []struct {
		Name  string `json:"name"`
		Token string `json:"token"`
	} `json:"tokens"`
}

func jose(t *testing.T) (joseFile, func(string) string) {
	b, err := os.ReadFile("../jwt/testdata/jose/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var f joseFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f, func(name string) string {
		for _, tk := range f.Tokens {
			if tk.Name == name {
				return tk.Token
			}
		}
		t.Fatalf("no token %q", name)
		return ""
	}
}

func basic(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestIdentification covers V1 (API key, Basic with a bcrypt hash), V2 (per-consumer JWT),
// V3 (shared JWKS + usernameClaim), the injected id and headers, spoof stripping and 401.
func TestIdentification(t *testing.T) {
	f, tok := jose(t)
	jwks, err := os.ReadFile("../jwt/testdata/jose/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) }))
	defer idp.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret-billing"), bcrypt.MinCost)
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
consumers:
  idHeader: X-Consumer-ID
  skipPaths: [/public/**]
  sharedJwt: { jwksUrl: %q, issuer: %q, audience: [%q], usernameClaim: sub }
  consumers:
    - username: alice
      apiKey: alice-key-0123456789
      headers: { X-Tier: free }
    - username: bob
      apiKey: bob-key-0123456789
      headers: { X-Tier: premium, X-SLA: "99.9" }
    - username: billing-service
      basicAuth: { password: %q }
      headers: { X-Internal: "true" }
    - username: data-pipeline
      jwt: { secret: %q, issuer: %q }
    - username: user-42
requestTransform:
  setHeaders: { X-Email: "{{ jwt.email }}" }
proxy: %q
`, idp.URL, f.Issuer, f.Audience, string(hash), f.Secret, f.Issuer, up.URL))
	base := srv.URL(8080)
	for _, tc := range []struct {
		name    string
		headers []string
		id      string
		extra   map[string]string
	}{
		{"V1 api key", []string{"X-API-Key: alice-key-0123456789"}, "alice", map[string]string{"X-Tier": "free"}},
		{"V1 api key, spoofed id and tier", []string{"X-API-Key: alice-key-0123456789", "X-Consumer-ID: bob", "X-Tier: premium", "X-SLA: 100"}, "alice", map[string]string{"X-Tier": "free", "X-Sla": ""}},
		{"V1 second key", []string{"x-api-key: bob-key-0123456789"}, "bob", map[string]string{"X-Tier": "premium", "X-Sla": "99.9"}},
		{"V1 basic (bcrypt)", []string{basic("billing-service", "s3cret-billing")}, "billing-service", map[string]string{"X-Internal": "true"}},
		{"V2 per-consumer JWT", []string{"Authorization: Bearer " + tok("secret HS256")}, "data-pipeline", map[string]string{"X-Email": "u42@example.test"}},
		{"V3 shared JWKS", []string{"Authorization: Bearer " + tok("ec-256 ES256")}, "user-42", map[string]string{"X-Email": "u42@example.test"}},
	} {
		r := authtest.Get(t, base+"/api", tc.headers...)
		if r.Status != 200 {
			t.Fatalf("%s: %d", tc.name, r.Status)
		}
		got := up.Last().Header
		if v := got.Values("X-Consumer-Id"); len(v) != 1 || v[0] != tc.id {
			t.Errorf("%s: X-Consumer-ID %q, want %q", tc.name, v, tc.id)
		}
		for k, want := range tc.extra {
			if got.Get(k) != want {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got.Get(k), want)
			}
		}
	}
	before := up.Count()
	for name, hs := range map[string][]string{
		"nothing":                    nil,
		"wrong key":                  {"X-API-Key: alice-key-012345678"},
		"key in wrong header":        {"X-Api-Token: alice-key-0123456789"},
		"wrong password":             {basic("billing-service", "nope")},
		"basic for key user":         {basic("alice", "alice-key-0123456789")},
		"expired token":              {"Authorization: Bearer " + tok("expired")},
		"V3 token, no such consumer": {"Authorization: Bearer " + tok("wrong audience")},
		"spoofed id only":            {"X-Consumer-ID: alice"},
	} {
		r := authtest.Get(t, base+"/api", append(hs, "Accept: application/json")...)
		if r.Status != 401 || r.Body != `{"error":"Unauthorized","status":401}` {
			t.Errorf("%s: %d %q", name, r.Status, r.Body)
		}
	}
	if up.Count() != before {
		t.Fatal("an unidentified request reached the upstream")
	}
	// skipPaths: no identification needed, but a spoofed id never passes.
	if r := authtest.Get(t, base+"/public/x", "X-Consumer-ID: alice", "X-Tier: premium"); r.Status != 200 {
		t.Fatalf("skip path: %d", r.Status)
	}
	if h := up.Last().Header; h.Get("X-Consumer-Id") != "" || h.Get("X-Tier") != "" {
		t.Fatalf("spoofed headers on a skip path: %v", h)
	}
}

// TestFirstMatchWins: with two consumers sharing a Basic user name impossible, order
// decides between an API key and a Basic credential sent together.
func TestFirstMatchWins(t *testing.T) {
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
consumers:
  consumers:
    - { username: first, apiKey: first-key-0123456789 }
    - { username: second, basicAuth: { password: pw-0123456789 } }
proxy: %q
`, up.URL))
	r := authtest.Get(t, srv.URL(8080)+"/", "X-API-Key: first-key-0123456789", basic("second", "pw-0123456789"))
	if r.Status != 200 || up.Last().Header.Get("X-Consumer-Id") != "first" {
		t.Fatalf("%d %q", r.Status, up.Last().Header.Get("X-Consumer-Id"))
	}
}

// TestConsumerRateLimit: a consumer's limit is enforced per username with 429.
func TestConsumerRateLimit(t *testing.T) {
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
consumers:
  consumers:
    - username: limited
      apiKey: limited-key-0123456789
      rateLimit: { windowSecs: 3600, limit: 3 }
    - username: free
      apiKey: free-key-0123456789
proxy: %q
`, up.URL))
	for i := 0; i < 3; i++ {
		if r := authtest.Get(t, srv.URL(8080)+"/", "X-API-Key: limited-key-0123456789"); r.Status != 200 {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	r := authtest.Get(t, srv.URL(8080)+"/", "X-API-Key: limited-key-0123456789")
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v", r.Status, r.Header)
	}
	if r := authtest.Get(t, srv.URL(8080)+"/", "X-API-Key: free-key-0123456789"); r.Status != 200 {
		t.Fatalf("another consumer is not limited: %d", r.Status)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"empty list", `consumers: { consumers: [] }`, "error at consumers.consumers: must list at least one consumer"},
		{"no username", `consumers: { consumers: [ { apiKey: k } ] }`, "error at consumers.consumers[0].username: is required"},
		{"duplicate", `consumers: { consumers: [ { username: a, apiKey: k1 }, { username: a, apiKey: k2 } ] }`, "error at consumers.consumers[1].username: duplicate consumer"},
		{"no credential", `consumers: { consumers: [ { username: a } ] }`, "error at consumers.consumers[0]: consumer \"a\" has no credential"},
		{"shared key", `consumers: { consumers: [ { username: a, apiKey: k }, { username: b, apiKey: k } ] }`, "error at consumers.consumers[1].apiKey: is also the apiKey of consumer \"a\""},
		{"limit 0", `consumers: { consumers: [ { username: a, apiKey: k, rateLimit: { windowSecs: 60, limit: 0 } } ] }`, "error at consumers.consumers[0].rateLimit.limit: must be ≥ 1"},
		{"window 0", `consumers: { consumers: [ { username: a, apiKey: k, rateLimit: { windowSecs: 0, limit: 5 } } ] }`, "error at consumers.consumers[0].rateLimit.windowSecs: must be ≥ 1"},
		{"jwt both", `consumers: { consumers: [ { username: a, jwt: { secret: s, jwksUrl: "https://x/j" } } ] }`, "error at consumers.consumers[0].jwt: secret and jwksUrl are mutually exclusive"},
		{"bad header", `consumers: { consumers: [ { username: a, apiKey: k, headers: { "bad name": v } } ] }`, "error at consumers.consumers[0].headers.bad name"},
		{"bad hash", `consumers: { consumers: [ { username: a, basicAuth: { password: "$2y$10$short" } } ] }`, "error at consumers.consumers[0].basicAuth.password: looks like a bcrypt hash but is malformed"},
		{"shared neither", `consumers: { sharedJwt: {}, consumers: [ { username: a } ] }`, "error at consumers.sharedJwt: needs a key source"},
		{"unset secret", `consumers: { consumers: [ { username: a, apiKey: "$NOT_SET_KEY" } ] }`, "error at consumers.consumers[0].apiKey: environment variable NOT_SET_KEY is not set"},
		{"unset password", `consumers: { consumers: [ { username: a, basicAuth: { password: "$NOT_SET_PW" } } ] }`, "error at consumers.consumers[0].basicAuth.password: environment variable NOT_SET_PW is not set"},
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
	// Warnings: keyBy has no effect.
	_, d, _ := servertest.Build("port: 8080\nconsumers: { consumers: [ { username: a, apiKey: k, rateLimit: { windowSecs: 60, limit: 5, keyBy: ip } } ] }\n", config.FormatYAML)
	var ws []string
	for _, w := range d.Warnings() {
		ws = append(ws, w.String())
	}
	text := strings.Join(ws, "\n")
	for _, want := range []string{"warning at consumers.consumers[0].rateLimit.keyBy: has no effect"} {
		if !strings.Contains(text, want) {
			t.Errorf("want %q in:\n%s", want, text)
		}
	}
}

// TestConsumerRouteACL: a consumer with allowedPaths reaches only those paths (403
// elsewhere, JSON body on request); a consumer without the list reaches everything.
func TestConsumerRouteACL(t *testing.T) {
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
consumers:
  consumers:
    - { username: reports, apiKey: reports-key-0123456789, allowedPaths: [/reports/**, /health] }
    - { username: admin, apiKey: admin-key-0123456789 }
proxy: %q
`, up.URL))
	cases := []struct {
		key, path string
		want      int
	}{
		{"reports-key-0123456789", "/reports", 200},
		{"reports-key-0123456789", "/reports/q1", 200},
		{"reports-key-0123456789", "/health", 200},
		{"reports-key-0123456789", "/admin/users", 403},
		{"reports-key-0123456789", "/reports/../admin", 403},
		{"admin-key-0123456789", "/admin/users", 200},
	}
	for _, c := range cases {
		if r := authtest.Get(t, srv.URL(8080)+c.path, "X-API-Key: "+c.key); r.Status != c.want {
			t.Errorf("%s %s: %d, want %d", c.key[:5], c.path, r.Status, c.want)
		}
	}
	r := authtest.Get(t, srv.URL(8080)+"/admin", "X-API-Key: reports-key-0123456789", "Accept: application/json")
	if r.Status != 403 || !strings.Contains(r.Body, `"status":403`) {
		t.Fatalf("JSON denial: %d %q", r.Status, r.Body)
	}
}

// TestUnknownBasicUserTiming: an unknown basicAuth user name takes about as long as a wrong
// password for a consumer with a bcrypt password (loose bound: a third), and fails.
func TestUnknownBasicUserTiming(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right-pw"), 8)
	if err != nil {
		t.Fatal(err)
	}
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nconsumers:\n  consumers:\n    - { username: svc, basicAuth: { password: %q } }\nproxy: %q\n", hash, up.URL))
	try := func(user string) func() {
		return func() {
			h := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":wrong-pw"))
			if r := authtest.Get(t, srv.URL(8080)+"/x", h); r.Status != 401 {
				t.Fatalf("%s with a wrong password: %d, want 401", user, r.Status)
			}
		}
	}
	known, unknown := authtest.Medians(5, try("svc"), try("nobody"))
	t.Logf("wrong password for a bcrypt consumer: %v; unknown user: %v", known, unknown)
	if unknown < known/3 {
		t.Fatalf("an unknown user takes %v, a bcrypt consumer with a wrong password %v: the user name can be told by timing", unknown, known)
	}
}
