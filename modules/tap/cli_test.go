package tap

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/cli"
)

// runCLI runs `conduit args...` in a goroutine with buffers as its streams.
func runCLI(args ...string) (stdout, stderr *cliOut, code chan int) {
	stdout, stderr, code = &cliOut{}, &cliOut{}, make(chan int, 1)
	env := &cli.Env{Stdout: stdout, Stderr: stderr, LookupEnv: func(k string) (string, bool) {
		if k == "CONDUIT_ADMIN_TOKEN" {
			return adminToken, true
		}
		return "", false
	}}
	go func() { code <- cli.Run(env, args) }()
	return stdout, stderr, code
}

func wait(t *testing.T, code chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not finish within 30 s")
		return -1
	}
}

func TestTapCommandJSON(t *testing.T) {
	e := start(t, "")
	out, errOut, code := runCLI("tap", "--admin", e.adminAddr(), "--json", "--count", "3", "--status", "2xx", "--header", "x-up")
	waitFor(t, "conduit tap to subscribe", func() bool { return e.b.subscribers() == 1 })
	e.send(t, "GET", "/api/fail") // filtered out
	for _, p := range []string{"/api/a", "/api/b", "/api/c", "/api/d"} {
		e.send(t, "GET", p)
	}
	if c := wait(t, code); c != 0 {
		t.Fatalf("exit %d: %s", c, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", out.String())
	}
	for i, l := range lines {
		var ev EventJSON
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if want := []string{"/api/a", "/api/b", "/api/c"}[i]; ev.Path != want || ev.Status != 200 || ev.ResponseHeaders["X-Up"] != "yes" {
			t.Errorf("line %d: %+v", i, ev)
		}
	}
	waitFor(t, "the tap to unsubscribe", func() bool { return e.b.subscribers() == 0 })
}

func TestTapCommandHumanLines(t *testing.T) {
	e := start(t, "")
	out, errOut, code := runCLI("tap", "--admin", "http://"+e.adminAddr(), "--count", "2", "--header", "User-Agent")
	waitFor(t, "conduit tap to subscribe", func() bool { return e.b.subscribers() == 1 })
	e.send(t, "GET", "/api/x?y=1", "User-Agent", "ua-1")
	e.send(t, "DELETE", "/nope")
	if c := wait(t, code); c != 0 {
		t.Fatalf("exit %d: %s", c, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", out.String())
	}
	first := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  ?200 +\d+\.\d+ms GET +127\.0\.0\.1:\d+/api/x\?y=1  /api → ` + regexp.QuoteMeta(e.up.URL) + `  \S+  > User-Agent: "ua-1"$`)
	if !first.MatchString(lines[0]) {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.Contains(lines[1], " 404 ") || !strings.Contains(lines[1], "DELETE") || !strings.Contains(lines[1], "/nope  -") {
		t.Errorf("second line %q", lines[1])
	}
}

func TestTopOnce(t *testing.T) {
	e := start(t, "")
	out, errOut, code := runCLI("top", "--admin", e.adminAddr(), "--once", "--interval", "1s")
	waitFor(t, "conduit top to subscribe", func() bool { return e.b.subscribers() == 1 })
	var exit int
	for sent := 0; ; sent++ {
		select {
		case exit = <-code:
		default:
			e.send(t, "GET", "/api/top")
			if sent%5 == 4 {
				e.send(t, "GET", "/api/fail")
			}
			continue
		}
		break
	}
	if exit != 0 {
		t.Fatalf("exit %d: %s", exit, errOut)
	}
	s := out.String()
	for _, want := range []string{"conduit top", "ROUTE", "REQ/S", "SUCCESS", "P99", "UPSTREAM", e.up.URL} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// The /api row: name, site, a req/s figure, a success rate below 100 %.
	row := regexp.MustCompile(`(?m)^/api +\*:8080 +(\d+\.\d) +(\d+\.\d)% `).FindStringSubmatch(s)
	if row == nil || row[1] == "0.0" || row[2] == "100.0" {
		t.Fatalf("no /api row with a rate:\n%s", s)
	}
	if strings.Contains(s, clearScreen) {
		t.Error("ANSI clear written to a non-terminal")
	}
}

func TestTopJSON(t *testing.T) {
	e := start(t, "")
	out, errOut, code := runCLI("top", "--admin", e.adminAddr(), "--once", "--json", "--interval", "200ms", "--route", "/api")
	waitFor(t, "conduit top to subscribe", func() bool { return e.b.subscribers() == 1 })
	var exit int
	for {
		select {
		case exit = <-code:
		default:
			e.send(t, "GET", "/api/j")
			e.send(t, "GET", "/elsewhere") // filtered out by --route
			continue
		}
		break
	}
	if exit != 0 {
		t.Fatalf("exit %d: %s", exit, errOut)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	if len(rep.Routes) != 1 || rep.Routes[0].Name != "/api" || rep.Routes[0].RPS <= 0 || rep.Routes[0].Success != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestCommandsFailWhenAdminUnreachable(t *testing.T) {
	e := start(t, "")
	addr := e.adminAddr()
	_ = e.api.Close(t.Context())
	for _, args := range [][]string{
		{"tap", "--admin", addr},
		{"top", "--admin", addr, "--once"},
	} {
		_, errOut, code := runCLI(args...)
		if c := wait(t, code); c != 1 || !strings.Contains(errOut.String(), "admin API unreachable") {
			t.Errorf("%v: exit %d, stderr %q", args, c, errOut)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	e := start(t, "")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"tap", "--admin", e.adminAddr(), "--status", "9xx"}, "admin API: 400: tap: status"},
		{[]string{"tap", "--admin", e.adminAddr(), "extra"}, "unexpected argument"},
		{[]string{"top", "--admin", e.adminAddr(), "--interval", "5ms"}, "--interval"},
		{[]string{"top", "--admin", e.adminAddr(), "--interval", "2s", "--window", "1s"}, "--window"},
		{[]string{"tap", "--bogus"}, "flag provided but not defined"},
	} {
		_, errOut, code := runCLI(c.args...)
		if got := wait(t, code); got != 1 || !strings.Contains(errOut.String(), c.msg) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, got, errOut, c.msg)
		}
	}
	// A wrong token is reported as such.
	env := &cli.Env{Stdout: &cliOut{}, Stderr: &cliOut{}, LookupEnv: func(k string) (string, bool) {
		if k == "CONDUIT_ADMIN_TOKEN" {
			return "wrong", true
		}
		return "", false
	}}
	if got := cli.Run(env, []string{"tap", "--admin", e.adminAddr()}); got != 1 || !strings.Contains(env.Stderr.(*cliOut).String(), "401") {
		t.Errorf("wrong token: exit %d, %q", got, env.Stderr.(*cliOut).String())
	}
}

func TestTapCommandEndsWithServer(t *testing.T) {
	e := start(t, "")
	_, errOut, code := runCLI("tap", "--admin", e.adminAddr())
	waitFor(t, "conduit tap to subscribe", func() bool { return e.b.subscribers() == 1 })
	_ = e.srv.Shutdown(t.Context())
	if c := wait(t, code); c != 1 || !strings.Contains(errOut.String(), "the server ended the stream") {
		t.Fatalf("exit %d, stderr %q", c, errOut)
	}
}
