package handoff

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"syscall"
)

// Sockets opens the process's listening sockets and remembers them for the next hand-off.
// In a process started by an upgrade it adopts the inherited socket of an address instead of
// binding it again. The zero value is not usable; call Inherit.
type Sockets struct {
	mu sync.Mutex
	// inherited are the sockets handed over and not adopted yet, by key.
	inherited map[string]*os.File
	// ready is the readiness pipe (nil: not started by an upgrade, or already answered).
	ready io.WriteCloser
	// open are the sockets this process listens on, by key, for Files.
	open map[string]filer
	// child is true when the process was started by an upgrade.
	child bool
}

// filer is a socket whose descriptor can be reached (*net.TCPListener, *net.UDPConn).
type filer interface {
	SyscallConn() (syscall.RawConn, error)
}

// Inherit reads EnvVar with lookup and adopts what it names; without EnvVar it returns
// Sockets that bind every address itself. unset (may be nil) is called with EnvVar once it
// is read, so that processes this one starts do not see it. An EnvVar that does not parse
// is an error: the old process is waiting for an answer and the new one must not bind
// addresses it may have been handed.
func Inherit(lookup func(string) (string, bool), unset func(string)) (*Sockets, error) {
	s := &Sockets{inherited: map[string]*os.File{}, open: map[string]filer{}}
	v, ok := lookup(EnvVar)
	if !ok {
		return s, nil
	}
	if unset != nil {
		unset(EnvVar)
	}
	spec, err := Parse(v)
	if err != nil {
		return nil, err
	}
	s.child = true
	// Inherited descriptors come without close-on-exec; set it so that a process this one
	// starts before adopting them (or a later upgrade's) does not inherit them by accident.
	syscall.CloseOnExec(spec.Ready)
	s.ready = os.NewFile(uintptr(spec.Ready), "handoff-ready")
	for k, fd := range spec.Sockets {
		syscall.CloseOnExec(fd)
		s.inherited[k] = os.NewFile(uintptr(fd), k)
	}
	return s, nil
}

// Child reports whether the process was started by an upgrade.
func (s *Sockets) Child() bool { return s.child }

// take removes and returns the inherited socket of key.
func (s *Sockets) take(key string) *os.File {
	f := s.inherited[key]
	delete(s.inherited, key)
	return f
}

// Listen returns a TCP listener on addr: the inherited one when the process was handed a
// socket requested with the same address, else a new one. Adopting goes through
// net.FileListener, which switches the shared socket to blocking mode for the few
// microseconds between its dup and its SetNonblock; an accept(2) of the old process that
// finds the queue empty in that window waits for the next connection instead of returning
// at once (the connection is then served as any other).
func (s *Sockets) Listen(network, addr string) (net.Listener, error) {
	key := Key("tcp", addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	var ln net.Listener
	if f := s.take(key); f != nil {
		l, err := net.FileListener(f)
		_ = f.Close() // FileListener holds its own duplicate
		if err != nil {
			return nil, fmt.Errorf("adopt inherited socket %s: %w", key, err)
		}
		ln = l
	} else {
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		ln = l
	}
	if fl, ok := ln.(filer); ok {
		s.open[key] = fl
	}
	return ln, nil
}

// ListenPacket returns a UDP socket on addr: the inherited one when the process was handed a
// socket requested with the same address, else a new one.
func (s *Sockets) ListenPacket(network, addr string) (net.PacketConn, error) {
	key := Key("udp", addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	var pc net.PacketConn
	if f := s.take(key); f != nil {
		c, err := net.FilePacketConn(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("adopt inherited socket %s: %w", key, err)
		}
		pc = c
	} else {
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, err
		}
		pc = c
	}
	if fl, ok := pc.(filer); ok {
		s.open[key] = fl
	}
	return pc, nil
}

// CloseUnused closes the inherited sockets no Listen or ListenPacket adopted (the new
// configuration no longer has their address) and returns their keys, sorted.
func (s *Sockets) CloseUnused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.inherited))
	for k, f := range s.inherited {
		_ = f.Close()
		keys = append(keys, k)
	}
	clear(s.inherited)
	sort.Strings(keys)
	return keys
}

// Ready tells the process that started this one that it serves. It does nothing in a
// process not started by an upgrade, and answers once.
func (s *Sockets) Ready() error {
	s.mu.Lock()
	w := s.ready
	s.ready = nil
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	_, err := io.WriteString(w, ReadyLine)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("handoff: signal ready: %w", err)
	}
	return nil
}

// File is one socket duplicated for a hand-off.
type File struct {
	// Key is the socket's key (Key).
	Key string
	// FD is a duplicate of its descriptor (close-on-exec); CloseFiles closes it.
	FD int
}

// Files duplicates every socket the process listens on. A socket that cannot be duplicated
// is an error (the duplicates made are closed): an upgrade must hand over every listener or
// none. The duplicates are raw descriptors, not *os.File: os.File.Fd (which os/exec calls on
// ExtraFiles) switches a descriptor to blocking mode, and the mode belongs to the socket, so
// the listener this process still accepts on would block a thread in accept(2) and hang in
// Close.
func (s *Sockets) Files() ([]File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.open))
	for k := range s.open {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]File, 0, len(keys))
	for _, k := range keys {
		fd, err := dup(s.open[k])
		if err != nil {
			CloseFiles(out)
			if errors.Is(err, net.ErrClosed) {
				return nil, fmt.Errorf("socket %s is closed (the server is shutting down)", k)
			}
			return nil, fmt.Errorf("duplicate socket %s: %w", k, err)
		}
		out = append(out, File{Key: k, FD: fd})
	}
	return out, nil
}

// dup duplicates the descriptor of f with close-on-exec set, leaving its mode alone.
func dup(f filer) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	err = rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		nfd = int(r)
	})
	if err != nil {
		return -1, err
	}
	return nfd, derr
}

// CloseFiles closes the duplicates Files returned.
func CloseFiles(fs []File) {
	for _, f := range fs {
		_ = syscall.Close(f.FD)
	}
}
