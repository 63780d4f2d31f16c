package basic_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/basic"
	"github.com/conduitproxy/conduit/modules/auth/internal/authtest"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func auth(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasicAuth(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("bcrypt-pw"), bcrypt.MinCost)
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
basicAuth:
  realm: Admin "Panel"
  users:
    plain: plain-pw
    hashed: %q
    apr: "$apr1$saltsalt$r/QcFGT5pNL28bNkeDMHR."
    sha: "{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0="
  skipPaths: [/__health__, /public/**]
proxy: %q
`, string(hash), up.URL))
	base := srv.URL(8080)
	for _, tc := range []struct {
		h    string
		want int
	}{
		{auth("plain", "plain-pw"), 200},
		{auth("hashed", "bcrypt-pw"), 200},
		{auth("hashed", "bcrypt-pw"), 200}, // success cache
		{auth("apr", "hunter2"), 200},
		{auth("sha", "hunter2"), 200},
		{"authorization: basic " + base64.StdEncoding.EncodeToString([]byte("plain:plain-pw")), 200},
		{auth("plain", "plain-pwx"), 401},
		{auth("plain", ""), 401},
		{auth("nobody", "plain-pw"), 401},
		{auth("hashed", "$2y"), 401},
		{"Authorization: Basic !!!", 401},
		{"Authorization: Bearer abc", 401},
		{"", 401},
	} {
		var hs []string
		if tc.h != "" {
			hs = append(hs, tc.h)
		}
		r := authtest.Get(t, base+"/x", hs...)
		if r.Status != tc.want {
			t.Errorf("%q: %d, want %d", tc.h, r.Status, tc.want)
		}
		if tc.want == 401 && r.Header.Get("WWW-Authenticate") != `Basic realm="Admin \"Panel\"", charset="UTF-8"` {
			t.Errorf("challenge %q", r.Header.Get("WWW-Authenticate"))
		}
	}
	if r := authtest.Get(t, base+"/public/a"); r.Status != 200 {
		t.Errorf("skip path: %d", r.Status)
	}
	if r := authtest.Get(t, base+"/public/../x"); r.Status != 401 {
		t.Errorf("dot-dot past a skip path: %d", r.Status)
	}
}

func TestNoChallenge(t *testing.T) {
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nbasicAuth: { users: { a: b }, challenge: false }\nproxy: %q\n", up.URL))
	r := authtest.Get(t, srv.URL(8080)+"/", "Accept: application/json")
	if r.Status != 401 || r.Header.Get("WWW-Authenticate") != "" || r.Body != `{"error":"Unauthorized","status":401}` {
		t.Fatalf("%d %v %q", r.Status, r.Header, r.Body)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"no users", `basicAuth: {}`, "error at basicAuth.users: is required"},
		{"empty users", `basicAuth: { users: {} }`, "error at basicAuth.users: must name at least one user"},
		{"colon", `basicAuth: { users: { "a:b": pw } }`, "error at basicAuth.users.a:b"},
		{"empty password", `basicAuth: { users: { a: "" } }`, "error at basicAuth.users.a: password must not be empty"},
		{"bad hash", `basicAuth: { users: { a: "{SHA}xx" } }`, "error at basicAuth.users.a: looks like a {SHA} hash but is malformed"},
		{"challenge type", `basicAuth: { users: { a: b }, challenge: yes please }`, "error at basicAuth.challenge: must be true or false"},
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

// TestUnknownUserTiming: a request naming an unknown user takes about as long as one with a
// wrong password for a bcrypt user (no user enumeration by timing), and still fails. The
// bound is loose (a third of the time) so that a busy machine does not make it flaky; before
// the decoy, an unknown user took under 1 % of the bcrypt time. Cost 8 keeps the test short
// on a loaded machine and is still ~50 times slower than the plaintext dummy was.
func TestUnknownUserTiming(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right-pw"), 8)
	if err != nil {
		t.Fatal(err)
	}
	up := authtest.NewUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nbasicAuth: { users: { plain: plain-pw, admin: %q } }\nproxy: %q\n", hash, up.URL))
	base := srv.URL(8080) + "/x"
	try := func(user string) func() {
		return func() {
			if r := authtest.Get(t, base, auth(user, "wrong-pw")); r.Status != 401 {
				t.Fatalf("%s with a wrong password: %d, want 401", user, r.Status)
			}
		}
	}
	known, unknown := authtest.Medians(5, try("admin"), try("nobody"))
	t.Logf("wrong password for a bcrypt user: %v; unknown user: %v", known, unknown)
	if unknown < known/3 {
		t.Fatalf("an unknown user takes %v, a bcrypt user with a wrong password %v: the user name can be told by timing", unknown, known)
	}
	if up.Count() != 0 {
		t.Fatalf("the upstream was reached %d times", up.Count())
	}
}
