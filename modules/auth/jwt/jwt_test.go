package jwt_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/modules/auth/internal/authtest"
	_ "github.com/conduitproxy/conduit/modules/auth/jwt"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

type joseFile struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	Secret   string `json:"secret"`
	Tokens   []struct {
		Name  string `json:"name"`
		Valid bool   `json:"valid"`
		Alg   string `json:"alg"`
		Token string `json:"token"`
	} `json:"tokens"`
}

func loadJose(t testing.TB) joseFile {
	b, err := os.ReadFile("testdata/jose/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var f joseFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f joseFile) token(t testing.TB, name string) string {
	for _, tk := range f.Tokens {
		if tk.Name == name {
			return tk.Token
		}
	}
	t.Fatalf("no token %q", name)
	return ""
}

// jwksServer serves testdata/jose/<file> and counts fetches.
func jwksServer(t *testing.T, file string) (*httptest.Server, *atomic.Int64) {
	b, err := os.ReadFile("testdata/jose/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// TestJWKSEndToEnd: tokens made by panva/jose pass through a real server verified against
// the jose JWKS served by a real HTTP server; claims fill {{ jwt.* }} templates; every
// attack answers 401; the JWKS is fetched once.
func TestJWKSEndToEnd(t *testing.T) {
	f := loadJose(t)
	idp, fetches := jwksServer(t, "jwks.json")
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
jwtAuth:
  jwksUrl: %q
  issuer: %q
  audience: [%q]
  skipPaths: [/public/**]
requestTransform:
  setHeaders:
    X-User: "{{ jwt.sub }}"
    X-Roles: "{{ jwt.roles }}"
    X-Tenant: "{{ jwt.tid }}"
proxy: %q
`, idp.URL, f.Issuer, f.Audience, up.URL))
	base := srv.URL(8080)

	for _, tk := range f.Tokens {
		if !tk.Valid || strings.HasPrefix(tk.Alg, "HS") || tk.Name == "expired within leeway" {
			continue
		}
		r := authtest.Get(t, base+"/api", "Authorization: Bearer "+tk.Token)
		if r.Status != 200 {
			t.Fatalf("%s: status %d", tk.Name, r.Status)
		}
		got := up.Last()
		if got.Header.Get("X-User") != "user-42" || got.Header.Get("X-Roles") != `["admin","editor"]` || got.Header.Get("X-Tenant") != "tenant-7" {
			t.Fatalf("%s: templates gave %q %q %q", tk.Name, got.Header.Get("X-User"), got.Header.Get("X-Roles"), got.Header.Get("X-Tenant"))
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}

	attacks := map[string]string{
		"no token":       "",
		"alg none":       "Authorization: Bearer eyJhbGciOiJub25lIiwia2lkIjoicnNhLTEifQ.eyJzdWIiOiJtYWxsb3J5In0.",
		"expired":        "Authorization: Bearer " + f.token(t, "expired"),
		"not yet valid":  "Authorization: Bearer " + f.token(t, "not yet valid"),
		"wrong issuer":   "Authorization: Bearer " + f.token(t, "wrong issuer"),
		"wrong audience": "Authorization: Bearer " + f.token(t, "wrong audience"),
		"unknown kid":    "Authorization: Bearer " + f.token(t, "unknown kid"),
		"HS256 token":    "Authorization: Bearer " + f.token(t, "secret HS256"),
		"malformed":      "Authorization: Bearer not.a.jwt",
		"oversized":      "Authorization: Bearer " + strings.Repeat("A", 9000),
		"basic scheme":   "Authorization: Basic dXNlcjpwYXNz",
	}
	before := up.Count()
	for name, h := range attacks {
		var hs []string
		if h != "" {
			hs = append(hs, h)
		}
		r := authtest.Get(t, base+"/api", append(hs, "Accept: application/json")...)
		if r.Status != 401 || r.Body != `{"error":"Unauthorized","status":401}` {
			t.Errorf("%s: %d %q", name, r.Status, r.Body)
		}
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: WWW-Authenticate %q", name, r.Header.Get("WWW-Authenticate"))
		}
		if plain := authtest.Get(t, base+"/api", hs...); plain.Status != 401 || plain.Body != "" {
			t.Errorf("%s without Accept json: %d %q", name, plain.Status, plain.Body)
		}
	}
	if up.Count() != before {
		t.Fatalf("a denied request reached the upstream")
	}

	// skipPaths: no token needed, and a token there is not read (templates stay empty).
	r := authtest.Get(t, base+"/public/x", "Authorization: Bearer "+f.token(t, "rsa-1 RS256"))
	if r.Status != 200 {
		t.Fatalf("skip path: %d", r.Status)
	}
	if got := up.Last().Header.Get("X-User"); got != "" {
		t.Fatalf("template filled on a skip path: %q", got)
	}
	if r := authtest.Get(t, base+"/public/../api"); r.Status != 401 {
		t.Fatalf("dot-dot escape from a skip path: %d", r.Status)
	}
	// The health endpoint is answered before guards.
	if r := authtest.Get(t, base+"/__health__"); r.Status != 200 {
		t.Fatalf("health: %d", r.Status)
	}
}

// TestSecretEndToEnd: HS256/384/512 tokens from jose with a shared secret.
func TestSecretEndToEnd(t *testing.T) {
	f := loadJose(t)
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\njwtAuth: { secret: %q }\nproxy: %q\n", f.Secret, up.URL))
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		if r := authtest.Get(t, srv.URL(8080)+"/", "Authorization: Bearer "+f.token(t, "secret "+alg)); r.Status != 200 {
			t.Errorf("%s: %d", alg, r.Status)
		}
	}
	// An RS256 token cannot pass a secret verifier.
	if r := authtest.Get(t, srv.URL(8080)+"/", "Authorization: Bearer "+f.token(t, "rsa-1 RS256")); r.Status != 401 {
		t.Errorf("RS256 on HS verifier: %d", r.Status)
	}
	// Case-insensitive scheme.
	if r := authtest.Get(t, srv.URL(8080)+"/", "Authorization: bearer "+f.token(t, "secret HS256")); r.Status != 200 {
		t.Errorf("lower-case scheme: %d", r.Status)
	}
}

// TestValidation checks the jwtAuth diagnostics and their paths.
func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, want string
		warn            bool
	}{
		{"neither", `jwtAuth: {}`, "error at jwtAuth: needs a key source", false},
		{"both", `jwtAuth: { secret: "0123456789abcdef0123456789abcdef", jwksUrl: "https://idp/jwks" }`, "error at jwtAuth: secret and jwksUrl are mutually exclusive", false},
		{"short secret", `jwtAuth: { secret: short }`, "warning at jwtAuth.secret: is 5 bytes", true},
		{"refresh too small", `jwtAuth: { jwksUrl: "https://idp/jwks", jwksRefreshSecs: 59 }`, "error at jwtAuth.jwksRefreshSecs: must be ≥ 60", false},
		{"bad url", `jwtAuth: { jwksUrl: "ftp://idp/jwks" }`, "error at jwtAuth.jwksUrl: must be an absolute http(s) URL", false},
		{"plain http", `jwtAuth: { jwksUrl: "http://idp.example/jwks" }`, "warning at jwtAuth.jwksUrl: uses plain http", true},
		{"refresh with secret", `jwtAuth: { secret: "0123456789abcdef0123456789abcdef", jwksRefreshSecs: 60 }`, "warning at jwtAuth.jwksRefreshSecs: has no effect", true},
		{"unknown key", `jwtAuth: { secret: "0123456789abcdef0123456789abcdef", isuser: x }`, `warning at jwtAuth.isuser: unknown key "isuser" (did you mean "issuer"?)`, true},
		{"audience string", `jwtAuth: { secret: "0123456789abcdef0123456789abcdef", audience: api }`, "", true},
		{"empty audience", `jwtAuth: { secret: "0123456789abcdef0123456789abcdef", audience: [""] }`, "error at jwtAuth.audience[0]: must not be empty", false},
		{"skipPaths", `jwtAuth: { secret: "0123456789abcdef0123456789abcdef", skipPaths: [login] }`, "error at jwtAuth.skipPaths[0]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\n"+tc.cfg+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, e := range d.Errors() {
				all = append(all, e.String())
			}
			for _, w := range d.Warnings() {
				all = append(all, w.String())
			}
			text := strings.Join(all, "\n")
			if tc.want != "" && !strings.Contains(text, tc.want) {
				t.Fatalf("want %q in:\n%s", tc.want, text)
			}
			if tc.warn && d.HasErrors() {
				t.Fatalf("unexpected error:\n%s", text)
			}
		})
	}
}
