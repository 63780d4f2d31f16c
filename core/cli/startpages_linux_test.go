package cli

import (
	"bytes"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFileKiB reads RssFile (resident file-backed pages, mostly the executable) of this
// process.
func rssFileKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("RssFile %q: %v", v, err)
			}
			return n
		}
	}
	t.Skip("kernel reports no RssFile")
	return 0
}

// TestReleaseStartupPages: the executable's read-only pages leave this process's resident set,
// the process goes on running code and reading read-only data from them (they map back on
// access), and writable data keeps its values.
func TestReleaseStartupPages(t *testing.T) {
	before := rssFileKiB(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	releaseStartupPages(logger)
	after := rssFileKiB(t)
	if !strings.Contains(logs.String(), "start-up pages of the executable released") || strings.Contains(logs.String(), "kept") {
		t.Fatalf("log: %s", logs.String())
	}
	if after >= before {
		t.Errorf("RssFile %d KiB after, %d KiB before: nothing released", after, before)
	}
	t.Logf("RssFile %d → %d KiB", before, after)
	// Code and read-only data still work, and a writable package variable kept its value.
	if got := strconv.Quote("ok\n"); got != `"ok\n"` {
		t.Errorf("strconv.Quote after release: %s", got)
	}
	if len(globalNotes) == 0 || globalNotes[0] == "" || !configOptions["-c"] {
		t.Error("package variables lost their values")
	}
}
