package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// sizeBudget is one binary whose stripped size has a budget.
type sizeBudget struct {
	Name      string
	BudgetMB  float64 // MB = 10^6 bytes
	build     func(repo, out string) error
	buildNote string
}

// sizeBudgets are the three bundles, built stripped (-trimpath -ldflags "-s -w" -tags grpcnotrace).
var sizeBudgets = []sizeBudget{
	{Name: "minimal", BudgetMB: 12, buildNote: "go run ./cmd/xbuild --bundle minimal -o OUT",
		build: func(repo, out string) error {
			cmd := exec.Command("go", "run", "./cmd/xbuild", "--bundle", "minimal", "-o", out)
			cmd.Dir = repo
			if o, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("xbuild --bundle minimal failed: %v: %s", err, firstLines(string(o), 3))
			}
			return nil
		}},
	{Name: "standard", BudgetMB: 20, buildNote: `go build -trimpath -ldflags "-s -w" -tags grpcnotrace ./cmd/conduit`,
		build: func(repo, out string) error { return goBuild(repo, out, "./cmd/conduit") }},
	{Name: "full", BudgetMB: 60, buildNote: `go build -trimpath -ldflags "-s -w" -tags grpcnotrace ./cmd/conduit-full`,
		build: func(repo, out string) error { return goBuild(repo, out, "./cmd/conduit-full") }},
}

// sizes builds each bundle and writes sizes.md (also printed) with the budgets.
func (b *bench) sizes() error {
	desc := conduitVersion(b)
	var sb strings.Builder
	sb.WriteString("| binary | build | size MB | size MiB | budget MB | verdict |\n|---|---|---:|---:|---:|---|\n")
	for _, s := range sizeBudgets {
		out := filepath.Join(b.workDir, "conduit-"+s.Name)
		fmt.Printf("conduit-bench: building %s\n", s.Name)
		if err := s.build(b.cfg.repo, out); err != nil {
			fmt.Fprintf(&sb, "| %s | `%s` | – | – | %.0f | failed: %s |\n", s.Name, s.buildNote, s.BudgetMB, err)
			continue
		}
		st, err := os.Stat(out)
		if err != nil {
			return fmt.Errorf("stat %s: %w", out, err)
		}
		mb := float64(st.Size()) / 1e6
		fmt.Fprintf(&sb, "| %s | `%s` | %.2f | %.2f | %.0f | %s |\n", s.Name, s.buildNote, mb,
			float64(st.Size())/(1<<20), s.BudgetMB, verdict(mb <= s.BudgetMB))
	}
	fmt.Fprintf(&sb, "\nconduit: %s (when the builds started)\n", desc)
	if err := os.WriteFile(filepath.Join(b.dir, "sizes.md"), []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("write sizes.md: %w", err)
	}
	fmt.Print("\n" + sb.String())
	return nil
}
