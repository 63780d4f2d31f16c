package handoff

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultReadyTimeout is how long an upgrade waits for the new process to signal ready when
// Upgrader.Timeout is 0.
const DefaultReadyTimeout = 30 * time.Second

// ErrInProgress is returned by Upgrade while another upgrade of the same process runs.
var ErrInProgress = errors.New("an upgrade is already in progress")

// Upgrader starts the new binary of an upgrade and waits until it serves.
type Upgrader struct {
	// Path is the executable to start: the path this process was started from, resolved when
	// it started (Executable), so that a binary replaced by a rename is the new one.
	Path string
	// Args are the arguments after the program name, the same as this process's.
	Args []string
	// Argv0 is the program name the new process sees (os.Args[0]).
	Argv0 string
	// Env returns the environment of the new process (os.Environ when nil).
	Env func() []string
	// Sockets are the sockets handed over.
	Sockets *Sockets
	// Timeout bounds the wait for the new process to signal ready (DefaultReadyTimeout when 0).
	Timeout time.Duration
	// Stdout and Stderr are the new process's output (this process's when nil).
	Stdout, Stderr *os.File

	mu sync.Mutex
}

// Executable resolves argv0 (os.Args[0]) the way the shell found it, into an absolute path:
// a name with a slash is taken relative to dir (the working directory at start), a bare
// name is looked up in PATH. Call it when the process starts: later, PATH or the working
// directory may have changed. It does not read /proc/self/exe, which names the file the
// process runs from even after a rename replaced it.
func Executable(argv0, dir string) (string, error) {
	p := argv0
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("find %q in PATH: %w", argv0, err)
		}
		p = lp
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p), nil
}

// Result is a finished upgrade.
type Result struct {
	// PID is the new process's.
	PID int
	// Sockets are the keys of the sockets handed over, sorted.
	Sockets []string
	// Took is the time from starting the new process to its ready signal.
	Took time.Duration
}

// Upgrade starts the new process with every socket, and returns once it has signalled ready.
// If it cannot be started, exits, or does not signal ready within the timeout (or ctx), the
// error says why and this process keeps serving (a new process that missed the timeout is
// killed). Only one upgrade runs at a time: another returns ErrInProgress at once.
func (u *Upgrader) Upgrade(ctx context.Context) (*Result, error) {
	if !u.mu.TryLock() {
		return nil, ErrInProgress
	}
	defer u.mu.Unlock()
	files, err := u.Sockets.Files()
	if err != nil {
		return nil, err
	}
	defer CloseFiles(files)
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("readiness pipe: %w", err)
	}
	defer rd.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		_ = wr.Close()
		return nil, err
	}
	defer devnull.Close()
	// The new process's descriptors: stdin, stdout, stderr, the pipe, then the sockets.
	fds := []uintptr{devnull.Fd(), orFile(u.Stdout, os.Stdout).Fd(), orFile(u.Stderr, os.Stderr).Fd(), wr.Fd()}
	spec := Spec{Ready: 3, Sockets: map[string]int{}}
	keys := make([]string, 0, len(files))
	for _, f := range files {
		spec.Sockets[f.Key] = len(fds)
		fds = append(fds, uintptr(f.FD))
		keys = append(keys, f.Key)
	}
	val, err := Encode(spec)
	if err != nil {
		_ = wr.Close()
		return nil, err
	}
	env := os.Environ()
	if u.Env != nil {
		env = u.Env()
	}
	env = append(withoutVar(env, EnvVar), EnvVar+"="+val)
	argv0 := u.Argv0
	if argv0 == "" {
		argv0 = u.Path
	}
	start := time.Now()
	// syscall.ForkExec, not os/exec: os/exec calls os.File.Fd on ExtraFiles, which switches
	// the socket this process still accepts on to blocking mode (see Sockets.Files).
	pid, err := syscall.ForkExec(u.Path, append([]string{argv0}, u.Args...), &syscall.ProcAttr{Env: env, Files: fds})
	_ = wr.Close() // the child holds its own copy; EOF on rd now means it closed or exited
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", u.Path, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("new process %d: %w", pid, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- waitExit(proc) }()
	ready := make(chan error, 1)
	go func() { ready <- readReady(rd) }()
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	fail := func(why error) (*Result, error) {
		_ = proc.Kill()
		return nil, fmt.Errorf("new process %d (%s): %w", pid, u.Path, why)
	}
	select {
	case err := <-ready:
		if err != nil {
			// EOF without the ready line: the process closed the pipe or exited; wait briefly
			// for its exit status, which says more.
			select {
			case werr := <-exited:
				return fail(exitError(werr))
			case <-time.After(2 * time.Second):
				return fail(err)
			}
		}
		return &Result{PID: pid, Sockets: keys, Took: time.Since(start)}, nil
	case werr := <-exited:
		return fail(exitError(werr))
	case <-timer.C:
		return fail(fmt.Errorf("did not signal ready within %s; killed", timeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("upgrade cancelled before the process was ready: %w", ctx.Err()))
	}
}

// exitError describes the end of a new process that exited before it was ready.
func exitError(err error) error {
	if err == nil {
		return errors.New("exited with status 0 before it signalled ready")
	}
	return fmt.Errorf("exited before it signalled ready (%v); its log says why", err)
}

// waitExit waits for p and returns nil for a zero exit status, else an error that names it.
func waitExit(p *os.Process) error {
	st, err := p.Wait()
	if err != nil {
		return err
	}
	if !st.Success() {
		return &exec.ExitError{ProcessState: st}
	}
	return nil
}

// readReady reads the readiness pipe: nil once ReadyLine arrives, else why not.
func readReady(r io.Reader) error {
	line, err := bufio.NewReader(io.LimitReader(r, 64)).ReadString('\n')
	if line == ReadyLine {
		return nil
	}
	if err != nil {
		return fmt.Errorf("closed the readiness pipe without signalling ready")
	}
	return fmt.Errorf("wrote %q instead of the ready signal", line)
}

// withoutVar returns env without the entries of name.
func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func orFile(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}
