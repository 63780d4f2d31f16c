package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitWithFlags: `conduit init --yes` writes the config its flags describe, in the format
// -o or --format decides, and the file passes `conduit validate`; contradicting flags and an
// existing file are exit 1 and write nothing.
func TestInitWithFlags(t *testing.T) {
	tests := []struct {
		args []string
		file string
		want []string // in the file
	}{
		{[]string{"-y"}, "conduit.yaml", []string{"port: 8080", "static: ./dist", "logging: dev"}},
		{[]string{"--yes", "--format", "json"}, "conduit.json", []string{`"port": 8080`, `"static": "./dist"`}},
		{[]string{"-y", "-o", "site.json", "--proxy", "http://127.0.0.1:3000", "--no-static", "--log", "none", "--no-health", "--port", "9000"}, "site.json",
			[]string{`"port": 9000`, `"proxy": "http://127.0.0.1:3000"`, `"logging": false`, `"healthCheck": false`}},
		{[]string{"-y", "--output", "both.yml", "--proxy", "http://127.0.0.1:3000", "--static-dir", "public", "--log", "combined"}, "both.yml",
			[]string{"static: public", "/api: http://127.0.0.1:3000", "logging: combined"}},
		{[]string{"-y", "-o", "acme.yaml", "--tls-acme", "ops@example.com", "--host", "example.com"}, "acme.yaml",
			[]string{"host: example.com", "email: ops@example.com"}},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		code, out, errOut := runCLI(t, dir, nil, append([]string{"init"}, tc.args...)...)
		if code != 0 {
			t.Errorf("init %s: exit %d: %s%s", strings.Join(tc.args, " "), code, out, errOut)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Errorf("init %s: %v", strings.Join(tc.args, " "), err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(string(data), w) {
				t.Errorf("init %s wrote no %q:\n%s", strings.Join(tc.args, " "), w, data)
			}
		}
		if code, out, errOut := runCLI(t, dir, nil, "validate", tc.file); code != 0 {
			t.Errorf("init %s wrote a config validate refuses: %s%s\n%s", strings.Join(tc.args, " "), out, errOut, data)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-y", "--tls-cert", "c.pem"}, "need each other"},
		{[]string{"-y", "--tls-acme", "ops@example.com"}, "needs --host"},
		{[]string{"-y", "--proxy", "localhost:3000"}, "not an http:// or https:// URL"},
		{[]string{"-y", "--proxy", "http://127.0.0.1:1", "--no-proxy"}, "contradict"},
		{[]string{"-y", "--format", "xml"}, "must be one of yaml, json"},
		{[]string{"-y", "--log", "loud"}, "must be one of dev, json, combined, none"},
		{[]string{"-y", "--port", "70000"}, "between 1 and 65535"},
		{[]string{"-y", "-o", "x.yaml", "--format", "json"}, "does not match"},
		{[]string{"-y", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "would not validate"},
		{nil, "needs a terminal"}, // stdin is not a terminal and no --yes
	} {
		dir := t.TempDir()
		code, _, errOut := runCLI(t, dir, nil, append([]string{"init"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("init %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("init %s failed but wrote %s", strings.Join(tc.args, " "), entries[0].Name())
		}
	}
	dir := t.TempDir()
	writeFile(t, dir, "conduit.yaml", "port: 1234\n")
	if code, _, errOut := runCLI(t, dir, nil, "init", "-y"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("init -y over an existing file: exit %d, %q", code, errOut)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "conduit.yaml")); string(data) != "port: 1234\n" {
		t.Errorf("init -y overwrote the existing file: %q", data)
	}
}

// TestInitWizardInATerminal answers the wizard in a real pseudo-terminal (tmux): a bad URL
// is asked again, the file written passes validate; a second run asks before overwriting and
// keeps the file when told no.
func TestInitWizardInATerminal(t *testing.T) {
	dir := t.TempDir()
	tm := startTmux(t, dir, "sh", "-c", "conduit init -o app.yaml; echo EXIT=$?; sleep 60")
	tm.wait("Port [8080]:")
	tm.line("9090")
	tm.wait("Serve static files? [Y/n]:")
	tm.line("n")
	tm.wait("Proxy requests to an upstream? [y/N]:")
	tm.line("y")
	tm.wait("Upstream URL [http://127.0.0.1:3000]:")
	tm.line("localhost:3000")
	tm.wait("is not an http:// or https:// URL")
	tm.line("http://127.0.0.1:4000")
	tm.wait("Access log (dev, json, combined, none) [dev]:")
	tm.line("json")
	tm.wait("Health endpoint at /__health__? [Y/n]:")
	tm.line("")
	tm.wait("TLS (none, files, acme) [none]:")
	tm.line("")
	tm.wait("EXIT=0")
	data, err := os.ReadFile(filepath.Join(dir, "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"port: 9090", "proxy: http://127.0.0.1:4000", "logging: json"} {
		if !strings.Contains(string(data), w) {
			t.Errorf("the wizard wrote no %q:\n%s", w, data)
		}
	}
	if strings.Contains(string(data), "static") {
		t.Errorf("static files were declined but written:\n%s", data)
	}
	if code, out, errOut := runCLI(t, dir, nil, "validate", "app.yaml"); code != 0 {
		t.Errorf("validate app.yaml: %s%s", out, errOut)
	}

	again := startTmux(t, dir, "sh", "-c", "conduit init -o app.yaml --port 1 --no-static --no-proxy --log dev --no-health; echo EXIT=$?; sleep 60")
	again.wait("TLS (none, files, acme) [none]:")
	again.line("")
	again.wait("app.yaml exists. Overwrite it? [y/N]:")
	again.line("")
	again.wait("EXIT=1")
	if after, _ := os.ReadFile(filepath.Join(dir, "app.yaml")); string(after) != string(data) {
		t.Errorf("declining the overwrite changed the file:\n%s", after)
	}
}
