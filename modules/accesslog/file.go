package accesslog

import (
	"fmt"
	"os"
	"sync"
)

// openLog opens path for appending, creating it (0644) when missing.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	return f, nil
}

// reopener is an append-only log file that can be reopened under writers (logrotate renames
// the file, then signals; the next line goes to a fresh file at the same path).
type reopener struct {
	path string
	mu   sync.RWMutex
	f    *os.File
}

func newReopener(path string, f *os.File) *reopener { return &reopener{path: path, f: f} }

// Write writes one whole line with one write call (O_APPEND keeps concurrent lines whole).
func (r *reopener) Write(b []byte) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	return r.f.Write(b)
}

// reopen opens the path again and swaps the file in; the old one is closed.
func (r *reopener) reopen() error {
	f, err := openLog(r.path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (r *reopener) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// isTerminal reports whether f is a character device (a terminal), for the dev colours.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
