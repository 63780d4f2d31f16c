// Package deploy_test checks the deployment files users copy from contrib/ (docs/deployment.md):
// the systemd unit passes `systemd-analyze verify`, and the Dockerfile is linted and its
// binary built (with Docker where a daemon runs, else the same static build it runs). The
// Kubernetes manifests are applied to a real API server by modules/kubernetes's tests.
package deploy_test

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// contrib is the directory of the deployment files.
var contrib = filepath.Join("..", "..", "contrib")

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contrib, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on contrib/conduit.service with its
// ExecStart/ExecReload binary path pointed at an executable that exists here; any
// diagnostic (an unknown or misspelt key is only a warning to systemd) fails.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testtool.Find(t, "systemd-analyze", ".ci/deps.sh (Debian package systemd)")
	unit := read(t, "conduit.service")
	for _, want := range []string{
		"ExecReload=/usr/local/bin/conduit reload", "EnvironmentFile=-/etc/conduit/conduit.env",
		"LimitNOFILE=65536", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=true",
		"ProtectSystem=strict", "ProtectHome=true", "PrivateTmp=true",
	} {
		found := false
		for _, line := range strings.Split(unit, "\n") {
			found = found || line == want || strings.HasPrefix(line, want+" ")
		}
		if !found {
			t.Errorf("the unit lacks %q", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, text string) string {
		dir := t.TempDir()
		path := filepath.Join(dir, "conduit.service")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/local/bin/conduit", self)), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
		if err != nil {
			return string(out) + err.Error()
		}
		return string(out)
	}
	if out := verify(t, unit); out != "" {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}
	// The check can fail: a misspelt hardening key is reported.
	if out := verify(t, strings.Replace(unit, "NoNewPrivileges=", "NoNewPrivilege=", 1)); !strings.Contains(out, "Unknown key") {
		t.Fatalf("a misspelt key was not reported: %q", out)
	}
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd, args string
}

// parseDockerfile splits a Dockerfile into instructions (comments and blank lines dropped,
// backslash continuations joined).
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfile lints contrib/Dockerfile against what docs/deployment.md promises, then
// builds it: with `docker build` where a Docker daemon answers, else by running the same
// static build its build stage runs and checking the binary is static.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(read(t, "Dockerfile"))
	var froms []string
	final := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
			final = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("not multi-stage: FROM %q", froms)
	}
	if base := strings.Fields(froms[len(froms)-1])[0]; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s; want scratch or distroless static", base)
	}
	var user, health, entry, buildCmd string
	bundleArg := false
	for i, in := range ins {
		switch in.cmd {
		case "ARG":
			if in.args == "BUNDLE=standard" {
				bundleArg = true
			}
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			health = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "RUN":
			if i > final {
				t.Errorf("RUN in the final stage (it has no shell): %s", in.args)
			}
			if strings.Contains(in.args, "go build") {
				buildCmd = in.args
			}
		}
	}
	if !bundleArg {
		t.Error("no ARG BUNDLE=standard")
	}
	if user != "65534:65534" && user != "65534" {
		t.Errorf("USER %q; want 65534", user)
	}
	if !strings.Contains(health, `CMD ["/conduit", "status"]`) {
		t.Errorf("HEALTHCHECK %q; want the exec form of conduit status", health)
	}
	if !strings.HasPrefix(entry, "[") {
		t.Errorf("ENTRYPOINT %q is not the exec form (there is no shell)", entry)
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-tags grpcnotrace", `-ldflags "-s -w`} {
		if !strings.Contains(buildCmd, flag) {
			t.Errorf("the build lacks the release flag %s: %s", flag, buildCmd)
		}
	}
	if t.Failed() {
		return
	}

	root := filepath.Join("..", "..")
	if dockerWorks() {
		for _, bundle := range []string{"standard", "full"} {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			out, err := exec.CommandContext(ctx, "docker", "build", "--build-arg", "BUNDLE="+bundle, "-t", "conduit-test:"+bundle, "-f", filepath.Join(contrib, "Dockerfile"), root).CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("docker build BUNDLE=%s: %v\n%s", bundle, err, out)
			}
		}
		return
	}
	t.Log("no Docker daemon answers here: building the binary the Dockerfile's build stage builds instead")
	m := regexp.MustCompile(`(CGO_ENABLED=0 go build .*?) -o /out/conduit "\$pkg"`).FindStringSubmatch(buildCmd)
	if m == nil {
		t.Fatalf("cannot find the go build command in %q", buildCmd)
	}
	bin := filepath.Join(t.TempDir(), "conduit")
	script := strings.ReplaceAll(m[1], "$VERSION", "container") + ` -o "$1" ./cmd/conduit`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script, "sh", bin)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; FROM scratch cannot run it")
		}
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("conduit container")) {
		t.Fatalf("conduit version: %v\n%s", err, out)
	}
}

// dockerWorks reports whether a Docker daemon answers.
func dockerWorks() bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}
