package cli

import (
	"bufio"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"syscall"
)

// releaseStartupPages unmaps from this process the pages of its own executable that start-up
// touched, once the server is listening, and marks the executable's read-only mappings for
// random access. Most of an idle Conduit's RSS is not Go memory but the executable's text and
// read-only data: every page fault maps the 64 KiB around the faulting page (the kernel's
// fault-around) when the file is in the page cache, so start-up leaves nearly the whole binary
// mapped (12.3 of 14.0 MiB for the standard bundle, measured with /proc/PID/smaps; its
// package inits allocate 0.28 MiB by GODEBUG=inittrace=1). MADV_DONTNEED on a read-only private file mapping
// only drops the page-table entries: the pages stay in the page cache, their contents cannot
// differ from the file, and the next access maps them again with a minor fault. MADV_RANDOM
// then keeps later faults to the page itself. Writable mappings (.data, .bss, the heap) are
// never touched. Failures are logged at debug level and change nothing else.
func releaseStartupPages(logger *slog.Logger) {
	exe, err := os.Executable()
	if err != nil {
		logger.Debug("start-up pages kept", "err", err)
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		logger.Debug("start-up pages kept", "err", err)
		return
	}
	defer f.Close()
	released := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || fields[1][1] != '-' || fields[1][3] != 'p' {
			continue // not the executable, writable, or shared
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if err := madviseRange(uintptr(start), uintptr(end-start)); err != nil {
			logger.Debug("start-up pages kept", "range", fields[0], "err", err)
			continue
		}
		released += int(end - start)
	}
	logger.Debug("start-up pages of the executable released", "bytes", released)
}

// madviseRange applies MADV_RANDOM, then MADV_DONTNEED, to [start, start+n).
func madviseRange(start, n uintptr) error {
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, start, n, syscall.MADV_RANDOM); e != 0 {
		return e
	}
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, start, n, syscall.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}
