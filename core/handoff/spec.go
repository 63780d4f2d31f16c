// Package handoff is the file-descriptor hand-off of a binary upgrade: a running Conduit
// starts the new binary with every listening socket as an inherited file descriptor
// (syscall.ForkExec with raw descriptors; Upgrader.Upgrade says why not os/exec), the new
// process adopts them instead of binding, and tells the old one it is ready over a pipe. docs/deployment.md describes the procedure.
//
// The protocol is one environment variable, EnvVar, set for the new process only:
//
//	CONDUIT_HANDOFF=v1 ready=3 tcp/127.0.0.1:8080=4 udp/[::]:8443=5
//
// "v1" is the protocol version; "ready=N" is the write end of the readiness pipe; every
// other field is a socket: its network and the address it was requested with, then the
// descriptor number. The new process writes ReadyLine to the pipe once its configuration is
// loaded and validated and its listeners serve; the old process then stops accepting,
// drains and exits.
package handoff

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// EnvVar names the environment variable that carries the hand-off to the new process.
const EnvVar = "CONDUIT_HANDOFF"

// version is the first field of EnvVar's value.
const version = "v1"

// ReadyLine is what the new process writes to the readiness pipe when it serves.
const ReadyLine = "READY\n"

// maxSockets bounds the number of sockets one hand-off names (a config has at most a few
// hundred ports; the bound keeps a hostile value from allocating without limit).
const maxSockets = 4096

// Spec is the parsed value of EnvVar.
type Spec struct {
	// Ready is the descriptor of the readiness pipe's write end.
	Ready int
	// Sockets maps a socket's key (Key) to its descriptor.
	Sockets map[string]int
}

// Key is the name a socket is handed over under: its network ("tcp" or "udp") and the
// address it was requested with (not the bound one: ":8080" stays ":8080"), so the new
// process finds it by asking for the same address.
func Key(network, addr string) string { return network + "/" + addr }

// validKey reports whether k is network "/" address with a network this package hands over
// and an address without the protocol's separators.
func validKey(k string) bool {
	network, addr, ok := strings.Cut(k, "/")
	if !ok || (network != "tcp" && network != "udp") || addr == "" {
		return false
	}
	return !strings.ContainsAny(addr, " =\t\n\r/")
}

// Encode returns the value of EnvVar for spec. It refuses a key the protocol cannot carry.
func Encode(spec Spec) (string, error) {
	if spec.Ready < 3 {
		return "", fmt.Errorf("handoff: readiness descriptor %d is not an inherited descriptor (≥ 3)", spec.Ready)
	}
	keys := make([]string, 0, len(spec.Sockets))
	for k := range spec.Sockets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(version + " ready=" + strconv.Itoa(spec.Ready))
	for _, k := range keys {
		if !validKey(k) {
			return "", fmt.Errorf("handoff: socket key %q cannot be handed over", k)
		}
		fd := spec.Sockets[k]
		if fd < 3 {
			return "", fmt.Errorf("handoff: socket %s: descriptor %d is not an inherited descriptor (≥ 3)", k, fd)
		}
		b.WriteString(" " + k + "=" + strconv.Itoa(fd))
	}
	return b.String(), nil
}

// Parse reads the value of EnvVar. Every descriptor must be ≥ 3 and used once, every key
// valid and named once.
func Parse(s string) (Spec, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || fields[0] != version {
		return Spec{}, fmt.Errorf("handoff: %s must start with %q", EnvVar, version)
	}
	if len(fields) > maxSockets+2 {
		return Spec{}, fmt.Errorf("handoff: %s names more than %d sockets", EnvVar, maxSockets)
	}
	spec := Spec{Ready: -1, Sockets: map[string]int{}}
	used := map[int]bool{}
	for _, f := range fields[1:] {
		i := strings.LastIndexByte(f, '=')
		if i <= 0 {
			return Spec{}, fmt.Errorf("handoff: field %q is not NAME=FD", f)
		}
		name, num := f[:i], f[i+1:]
		fd, err := strconv.Atoi(num)
		if err != nil || fd < 3 || num != strconv.Itoa(fd) {
			return Spec{}, fmt.Errorf("handoff: field %q: descriptor must be a number ≥ 3", f)
		}
		if used[fd] {
			return Spec{}, fmt.Errorf("handoff: descriptor %d is named twice", fd)
		}
		used[fd] = true
		if name == "ready" {
			if spec.Ready != -1 {
				return Spec{}, errors.New("handoff: ready is named twice")
			}
			spec.Ready = fd
			continue
		}
		if !validKey(name) {
			return Spec{}, fmt.Errorf("handoff: %q is not a socket key (tcp/ADDR or udp/ADDR)", name)
		}
		if _, dup := spec.Sockets[name]; dup {
			return Spec{}, fmt.Errorf("handoff: socket %s is named twice", name)
		}
		spec.Sockets[name] = fd
	}
	if spec.Ready == -1 {
		return Spec{}, errors.New("handoff: no ready=FD field")
	}
	return spec, nil
}
