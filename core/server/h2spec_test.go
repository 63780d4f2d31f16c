package server_test

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
)

// h2specExpected is one line of testdata/h2spec-expected.txt.
type h2specExpected struct {
	status string // "fail" (must fail) or "flaky" (may pass or fail)
	reason string
}

// loadH2specExpected reads the expected-failures list: "<mode> <case> <fail|flaky> <reason>",
// mode being tls, h2c or * (both).
func loadH2specExpected(t *testing.T) map[string]h2specExpected {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "h2spec-expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]h2specExpected{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || (fields[2] != "fail" && fields[2] != "flaky") {
			t.Fatalf("h2spec-expected.txt:%d: want \"<tls|h2c|*> <case> <fail|flaky> <reason>\"", n)
		}
		e := h2specExpected{status: fields[2], reason: strings.Join(fields[3:], " ")}
		modes := []string{fields[0]}
		if fields[0] == "*" {
			modes = []string{"tls", "h2c"}
		}
		for _, m := range modes {
			out[m+" "+fields[1]] = e
		}
	}
	return out
}

// junit is h2spec's JUnit report.
type junit struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name    string    `xml:"classname,attr"`
			Error   *struct{} `xml:"error"`
			Failure *struct{} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestH2spec runs h2spec (pinned, see testdata/install-conformance-tools.sh) against Conduit
// over TLS and over h2c, one subtest per case. A case that fails and is not in
// testdata/h2spec-expected.txt fails the test, and so does an expected failure that passes
// (the list may only shrink).
func TestH2spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec: skipped in -short mode")
	}
	bin := tool(t, "h2spec")
	expected := loadH2specExpected(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(up.Close)
	ca := tlstest.NewCA(t, "h2spec CA")
	cert, key := ca.Server(t, "localhost", "127.0.0.1").Write(t, t.TempDir(), "s")
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - {port: 8443, tls: {cert: %q, key: %q}, proxy: %q}
  - {port: 8080, http2: {h2c: true}, proxy: %q}
`, cert, key, up.URL, up.URL))
	for _, mode := range []string{"tls", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			port := 8080
			var args []string
			if mode == "tls" {
				port = 8443
				args = append(args, "-t", "-k")
			}
			_, p, _ := net.SplitHostPort(srv.HostPort(port))
			report := filepath.Join(t.TempDir(), "h2spec.xml")
			args = append(args, "-h", "127.0.0.1", "-p", p, "-o", "2", "-j", report)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatalf("h2spec: %v\n%s", err, out)
			}
			raw, rerr := os.ReadFile(report)
			if rerr != nil {
				t.Fatalf("h2spec wrote no report (%v): %s", rerr, out)
			}
			var rep junit
			if err := xml.Unmarshal(raw, &rep); err != nil {
				t.Fatalf("parse h2spec report: %v", err)
			}
			seen := 0
			for _, s := range rep.Suites {
				for i, c := range s.Cases {
					seen++
					id := s.Package + "/" + strconv.Itoa(i+1)
					failed := c.Error != nil || c.Failure != nil
					skipped := c.Skipped != nil
					exp, isExpected := expected[mode+" "+id]
					t.Run(id, func(t *testing.T) {
						switch {
						case skipped:
							t.Skipf("skipped by h2spec: %s", c.Name)
						case failed && !isExpected:
							t.Errorf("%s: %s — new failure (h2spec output has the details)", id, c.Name)
						case failed:
							t.Logf("expected failure: %s (%s)", c.Name, exp.reason)
						case isExpected && exp.status == "fail":
							t.Errorf("%s: %s passes now; remove it from testdata/h2spec-expected.txt", id, c.Name)
						}
					})
				}
			}
			if seen < 100 {
				t.Fatalf("h2spec reported only %d cases:\n%s", seen, out)
			}
			if t.Failed() {
				t.Logf("h2spec output:\n%s", out)
			}
		})
	}
}
