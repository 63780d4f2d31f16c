// Command notice writes NOTICE: Conduit's licence and the licence of every module the full
// binary (cmd/conduit-full, as the release builds it for each target OS) bundles, detected
// from the LICENSE file in the module cache, followed by the NOTICE files those modules ship
// (Apache-2.0 §4(d) asks redistributors to pass them on).
//
//	go run ./cmd/notice -o NOTICE
//
// TestNoticeIsCurrent regenerates it and fails when the checked-in file differs.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// target is what the notice is generated for: the release's main package, tags and systems.
var target = struct {
	pkg  string
	tags string
	goos []string
}{"./cmd/conduit-full", "grpcnotrace", []string{"linux", "darwin", "windows"}}

func main() {
	out := flag.String("o", "", "write to this file instead of standard output")
	flag.Parse()
	text, err := generate(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "notice:", err)
		os.Exit(1)
	}
	if *out == "" {
		_, _ = os.Stdout.Write(text)
		return
	}
	if err := os.WriteFile(*out, text, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "notice:", err)
		os.Exit(1)
	}
}

// module is one bundled module.
type module struct {
	Path, Version, Dir string
}

// generate builds the NOTICE text for the module rooted at root.
func generate(root string) ([]byte, error) {
	mods, err := bundledModules(root)
	if err != nil {
		return nil, err
	}
	goVersion, err := goDirective(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("Conduit\n")
	b.WriteString("Licensed under the Apache License, Version 2.0 (see LICENSE).\n\n")
	b.WriteString("The conduit-full binary bundles the following modules (the build list of\n")
	fmt.Fprintf(&b, "%s with -tags %s for %s), under these licences:\n\n", target.pkg, target.tags, strings.Join(target.goos, ", "))
	w := 0
	for _, m := range mods {
		w = max(w, len(m.Path)+1+len(m.Version))
	}
	fmt.Fprintf(&b, "%-*s  %s\n", w, "Go standard library go"+goVersion, "BSD-3-Clause")
	var notices []string
	for _, m := range mods {
		kinds, err := licenceOf(m.Dir)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", m.Path, m.Version, err)
		}
		fmt.Fprintf(&b, "%-*s  %s\n", w, m.Path+" "+m.Version, kinds)
		if n, ok := noticeFile(m.Dir); ok {
			notices = append(notices, fmt.Sprintf("---- NOTICE of %s %s ----\n\n%s", m.Path, m.Version, n))
		}
	}
	for _, n := range notices {
		b.WriteString("\n")
		b.WriteString(strings.TrimRight(n, "\n"))
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}

// bundledModules lists the modules (other than the main one) that provide a package of the
// target on any of its systems, sorted by path.
func bundledModules(root string) ([]module, error) {
	seen := map[string]module{}
	for _, goos := range target.goos {
		cmd := exec.Command("go", "list", "-deps", "-tags", target.tags,
			"-f", "{{with .Module}}{{if not .Main}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{with .Replace}}\t{{.Dir}}{{end}}{{end}}{{end}}", target.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list for %s: %w: %s", goos, err, stderr.String())
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			if len(f) < 3 {
				continue
			}
			m := module{Path: f[0], Version: f[1], Dir: f[2]}
			if len(f) == 4 {
				m.Dir = f[3] // a replacement's files
			}
			seen[m.Path] = m
		}
	}
	out := make([]module, 0, len(seen))
	for _, m := range seen {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// goDirective returns the version of go.mod's go line.
func goDirective(gomod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		return "", errors.New("go.mod has no go line")
	}
	return string(m[1]), nil
}

// licenceNames are the file names a module's licence is looked for under, in order.
var licenceNames = []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING", "LICENSE-APACHE", "LICENSE-MIT"}

// signatures identify licence texts by a phrase each contains.
var signatures = []struct{ kind, phrase string }{
	{"Apache-2.0", "Apache License"},
	{"MIT", "Permission is hereby granted, free of charge"},
	{"BSD", "Redistribution and use in source and binary forms"},
	{"MPL-2.0", "Mozilla Public License"},
	{"ISC", "Permission to use, copy, modify, and/or distribute this software for any"},
	{"CC0-1.0", "CC0 1.0 Universal"},
	{"Unlicense", "This is free and unencumbered software released into the public domain"},
}

// licenceOf returns the licence kinds of the module in dir, in the order their texts appear
// in its licence files (a file may hold several, as klauspost/compress's does). It fails when
// no licence file exists or none is recognised, so that a new dependency is looked at.
func licenceOf(dir string) (string, error) {
	var text bytes.Buffer
	for _, n := range licenceNames {
		if data, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			text.Write(data)
			text.WriteByte('\n')
		}
	}
	if text.Len() == 0 {
		return "", fmt.Errorf("no licence file in %s", dir)
	}
	t := strings.Join(strings.Fields(text.String()), " ") // line breaks differ between copies
	type hit struct {
		at   int
		kind string
	}
	var hits []hit
	for _, s := range signatures {
		if i := strings.Index(t, s.phrase); i >= 0 {
			kind := s.kind
			if kind == "BSD" {
				kind = bsdKind(t[i:])
			}
			hits = append(hits, hit{i, kind})
		}
	}
	if len(hits) == 0 {
		return "", fmt.Errorf("unrecognised licence text in %s", dir)
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].at < hits[j].at })
	kinds := make([]string, 0, len(hits))
	for _, h := range hits {
		kinds = append(kinds, h.kind)
	}
	return strings.Join(kinds, ", "), nil
}

// bsdKind tells the 3-clause BSD licence (with the endorsement clause) from the 2-clause one,
// looking at the text that follows the redistribution phrase.
func bsdKind(t string) string {
	end := strings.Index(t, "THIS SOFTWARE IS PROVIDED")
	if end < 0 {
		end = len(t)
	}
	if strings.Contains(t[:end], "Neither the name") || strings.Contains(t[:end], "names of its contributors") {
		return "BSD-3-Clause"
	}
	return "BSD-2-Clause"
}

// noticeFile returns the NOTICE file a module ships, if any.
func noticeFile(dir string) (string, bool) {
	for _, n := range []string{"NOTICE", "NOTICE.txt", "NOTICE.md"} {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err == nil && len(bytes.TrimSpace(data)) > 0 {
			return string(data), true
		}
	}
	return "", false
}
