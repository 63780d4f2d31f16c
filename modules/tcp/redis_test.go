package tcp_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
	"github.com/conduitproxy/conduit/modules/redis/redistest"
)

// TestRedisThroughTheProxy runs the real redis-cli against a real redis-server through a
// tcp site, and reads back directly what it wrote.
func TestRedisThroughTheProxy(t *testing.T) {
	rs := redistest.Start(t)
	cli := testtool.Find(t, "redis-cli", ".ci/deps.sh")
	srv := servertest.Start(t, site(6380, fmt.Sprintf("targets: [%q]", rs.Addr())))
	host, port, _ := strings.Cut(srv.HostPort(6380), ":")
	// run runs redis-cli with args; stdin, when not empty, is the last argument (-x).
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...)
		if stdin != "" {
			cmd.Args = append(cmd.Args[:1], append([]string{"-x"}, cmd.Args[1:]...)...)
			cmd.Stdin = strings.NewReader(stdin)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %.200s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("", "PING"); got != "PONG" {
		t.Fatalf("PING through the proxy: %q", got)
	}
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	if got := run(big, "SET", "through"); got != "OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := run("", "STRLEN", "through"); got != "1048576" {
		t.Fatalf("STRLEN through the proxy: %q", got)
	}
	if got, err := rs.Do("STRLEN", "through"); err != nil || got != ":1048576" {
		t.Fatalf("STRLEN directly: %q, %v", got, err)
	}
}
