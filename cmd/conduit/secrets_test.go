package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
	"golang.org/x/crypto/bcrypt"
)

// envWithout is this process's environment without the named variables, plus extra.
func envWithout(names []string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			if name == n {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// secretVars are the variables the secret fields below reference; the tests unset them.
var secretVars = []string{"T_ADMIN_TOKEN", "T_METRICS_TOKEN", "T_API_KEY", "T_PASSWORD", "T_JWT_SECRET", "T_REDIS_PASS", "T_CACHE_PASS"}

// secretsConfig references a variable from every kind of secret field: the admin and
// metrics tokens, an API key, a basic-auth password (next to a bcrypt hash, whose "$2y$…"
// is not a reference), a JWT secret and Redis URLs with a password.
func secretsConfig(t *testing.T, adminPort, sitePort int) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`global:
  admin: { bind: "127.0.0.1:%d", token: $T_ADMIN_TOKEN }
sites:
  - port: %d
    metrics: { token: "$T_METRICS_TOKEN" }
    apiKey: { keys: [$T_API_KEY, "${T_API_KEY}"] }
    basicAuth: { users: { a: $T_PASSWORD, b: %q } }
    jwtAuth: { secret: "$T_JWT_SECRET" }
    rateLimit: { windowSecs: 1, limit: 10, store: "redis://:$T_REDIS_PASS@127.0.0.1:6379" }
    proxy:
      /api: { targets: ["http://127.0.0.1:1"], cache: { store: "redis://:$T_CACHE_PASS@127.0.0.1:6379" } }
`, adminPort, sitePort, hash)
}

// TestUnresolvedSecretsAreErrors runs the binary: a secret field whose $VAR is unset is an
// error naming the path and the variable at validate and at start (the bcrypt hash is not
// one); with the variables set the server starts, a reload to a config with an unset secret
// is refused and the running config stays; and `conduit status` refuses to send a token
// that is a variable reference nobody expanded.
func TestUnresolvedSecretsAreErrors(t *testing.T) {
	dir := t.TempDir()
	adminPort, sitePort := testtool.FreePort(t), testtool.FreePort(t)
	cfg := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(cfg, []byte(secretsConfig(t, adminPort, sitePort)), 0o600); err != nil {
		t.Fatal(err)
	}
	unset := envWithout(secretVars)
	wantErrors := []string{
		"error at global.admin.token: environment variable T_ADMIN_TOKEN is not set",
		"error at sites[0].metrics.token: environment variable T_METRICS_TOKEN is not set",
		"error at sites[0].apiKey.keys[0]: environment variable T_API_KEY is not set",
		"error at sites[0].basicAuth.users.a: environment variable T_PASSWORD is not set",
		"error at sites[0].jwtAuth.secret: environment variable T_JWT_SECRET is not set",
		"error at sites[0].rateLimit.store: environment variable T_REDIS_PASS is not set",
		"error at sites[0].proxy./api.cache.store: environment variable T_CACHE_PASS is not set",
		"error at sites[0].apiKey.keys[1]: ${NAME} is not expanded (write $T_API_KEY)",
	}
	validate := exec.Command(binary, "validate", "-c", cfg)
	validate.Env = unset
	out, err := validate.Output()
	if err == nil {
		t.Fatalf("validate accepted unset secrets:\n%s", out)
	}
	for _, want := range append(wantErrors, fmt.Sprintf("%d errors found.", len(wantErrors))) {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "users.b") {
		t.Errorf("the bcrypt hash was taken for a reference:\n%s", out)
	}

	// Start refuses the same config.
	p := startConduitWithEnv(t, cfg, unset)
	select {
	case err := <-p.done:
		if err == nil || !strings.Contains(p.stderr.String(), wantErrors[0]) {
			t.Fatalf("start: %v\n%s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("conduit started with unset secrets")
	}

	// With the variables set it starts; a reload to an unset secret is refused.
	const adminToken = "an-admin-token-of-32-characters!"
	set := envWithout(secretVars, "T_ADMIN_TOKEN="+adminToken, "T_METRICS_TOKEN=a-metrics-token-of-32-characters",
		"T_API_KEY=k1", "T_PASSWORD=pw", "T_JWT_SECRET=0123456789abcdef0123456789abcdef", "T_REDIS_PASS=rp", "T_CACHE_PASS=cp")
	if err := os.WriteFile(cfg, []byte(strings.Replace(secretsConfig(t, adminPort, sitePort), `"${T_API_KEY}"`, "k2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startConduitWithEnv(t, cfg, set)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	status := func(token string) (int, string) {
		cmd := exec.Command(binary, "status", "--admin", admin)
		cmd.Env = envWithout([]string{"CONDUIT_ADMIN_TOKEN"}, "CONDUIT_ADMIN_TOKEN="+token)
		b, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := status(adminToken)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin API not ready; log:\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, tok := range []string{"$T_ADMIN_TOKEN", "${T_ADMIN_TOKEN}"} {
		if code, msg := status(tok); code != 1 || !strings.Contains(msg, "CONDUIT_ADMIN_TOKEN is the text of a variable reference") {
			t.Errorf("status with CONDUIT_ADMIN_TOKEN=%q: exit %d\n%s", tok, code, msg)
		}
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(secretsConfig(t, adminPort, sitePort), `"${T_API_KEY}"`, "k2", 1)+
		"    consumers: { consumers: [ { username: c, apiKey: $T_UNSET_CONSUMER_KEY } ] }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := "environment variable T_UNSET_CONSUMER_KEY is not set"
	for !strings.Contains(p.stderr.String(), want) || !strings.Contains(p.stderr.String(), "keeping the running config") {
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatalf("reload with an unset secret not refused; log:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, msg := status(adminToken); code != 0 {
		t.Fatalf("after the refused reload: exit %d %s", code, msg)
	}
}
