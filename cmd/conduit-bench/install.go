package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// debianPackage maps each program the harness runs to the Debian package that provides it.
var debianPackage = map[string]string{
	"nginx":        "nginx-light",
	"caddy":        "caddy",
	"haproxy":      "haproxy",
	"wrk":          "wrk",
	"h2load":       "nghttp2-client",
	"taskset":      "util-linux",
	"redis-server": "redis-server",
}

// installMissing apt-get installs the programs the selected peers and modes need that are
// not on PATH yet. nginx is always needed: it is the upstream.
func installMissing(cfg config) error {
	need := []string{"taskset", "nginx"}
	for _, p := range cfg.peers {
		if t, ok := findTarget(p); ok && t.Binary != "" {
			need = append(need, t.Binary)
		}
	}
	for _, name := range cfg.modes {
		if m, ok := findMode(name); ok && m.Tool != "" {
			need = append(need, m.Tool)
		}
	}
	for _, p := range cfg.peers {
		if t, ok := findTarget(p); ok && t.variant != nil && t.variant.Needs&needRedis != 0 {
			need = append(need, "redis-server")
		}
	}
	var pkgs []string
	for _, bin := range need {
		if _, err := exec.LookPath(bin); err == nil {
			continue
		}
		if pkg := debianPackage[bin]; pkg != "" && !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Printf("conduit-bench: installing %s\n", strings.Join(pkgs, " "))
	if err := runVisible("apt-get", "update"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
	if err := runVisible("apt-get", args...); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

// runVisible runs a command with its output on our stdout/stderr.
func runVisible(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.Run()
}
