package script_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// lockedBuffer is a bytes.Buffer that the server's goroutines may write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSandboxedOutput: a sandboxed script's fmt.Print, Printf, Println and println reach the
// site's log at info, one message a line (an interpreted type's String method used by fmt), fmt.Scanln reads
// nothing (not the process's standard input), and the generic packages yaegi compiles from
// source (cmp and slices here) are there for a script that imports them.
func TestSandboxedOutput(t *testing.T) {
	up := echo(t)
	var logs lockedBuffer
	srv := servertest.StartLogged(t, site(up.URL, "  - {type: script, path: testdata/scripts/printer.go}\n"), slog.New(slog.NewTextHandler(&logs, nil)))
	rep := servertest.Get(t, srv.URL(8080)+"/p")
	if rep.Status != 200 || rep.Header.Get("X-Scan") != "EOF" || rep.Header.Get("X-Generic") != "2 1" {
		t.Fatalf("got %d %v", rep.Status, rep.Header)
	}
	out := logs.String()
	if strings.Contains(out, `msg=""`) {
		t.Errorf("the log has an empty message (println's line end):\n%s", out)
	}
	for _, want := range []string{
		`level=INFO msg="println tenant acme" site=* script=`,
		`level=INFO msg="printf tenant beta 7" site=* script=`,
		`level=INFO msg="print /p" site=* script=`,
		`level=INFO msg=builtin site=* script=`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %s:\n%s", want, out)
		}
	}
}
