package h1guard

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const nodeServer = `
const http = require('http');
const s = http.createServer((req, res) => {
  let n = 0;
  req.on('data', d => { n += d.length; });
  req.on('end', () => { res.setHeader('X-Body', String(n)); res.end('ok'); });
});
s.listen(0, '127.0.0.1', () => { console.log(s.address().port); });
`

// TestNodeDifferential sends the corpus to Node's HTTP server (llhttp, strict mode): every
// case the guard accepts must be accepted by Node with the same number of responses. Cases
// only Node accepts are logged: the guard is meant to be the stricter one.
func TestNodeDifferential(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node not found: the llhttp differential test needs Node.js in CI")
		}
		t.Skip("node not found: skipping the llhttp differential test")
	}
	script := filepath.Join(t.TempDir(), "server.js")
	if err := os.WriteFile(script, []byte(nodeServer), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("node server: %v", err)
	}
	addr := "127.0.0.1:" + strings.TrimSpace(line)

	for _, c := range loadCorpus(t) {
		if c.verdict == "pass" || len(c.responses) == 0 {
			continue
		}
		got, _ := exchange(t, addr, c.raw, len(c.responses), false)
		nodeOK := 0
		for _, s := range got {
			if s == "200" {
				nodeOK++
			}
		}
		guardOK := 0
		for _, s := range c.responses {
			if s == "200" {
				guardOK++
			}
		}
		switch {
		case c.verdict == "accept" && nodeOK != guardOK:
			t.Errorf("%s: guard accepts (%v), node answered %v", c.name, c.responses, got)
		case c.verdict != "accept" && nodeOK > guardOK:
			t.Logf("%s: guard refuses with %s, node is more lenient: %v", c.name, c.verdict, got)
		}
	}
}
