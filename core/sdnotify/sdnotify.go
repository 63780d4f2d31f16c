// Package sdnotify sends systemd service notifications (sd_notify(3)) without cgo: one
// datagram to the unix socket named by $NOTIFY_SOCKET. A unit with Type=notify learns from
// it that Conduit serves (READY=1) and, after a binary upgrade, which process is the service's
// main one now (MAINPID=).
package sdnotify

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// EnvVar names the variable systemd sets to the notification socket's path.
const EnvVar = "NOTIFY_SOCKET"

// Notify sends state (newline-separated VAR=VALUE assignments, e.g. "READY=1") to the socket
// lookup(EnvVar) names. It returns false, nil when the variable is unset or empty (not
// started by systemd with Type=notify). A path starting with "@" is an abstract socket.
func Notify(lookup func(string) (string, bool), state string) (sent bool, err error) {
	path, ok := lookup(EnvVar)
	if !ok || path == "" {
		return false, nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return false, fmt.Errorf("sdnotify: %s=%q is neither an absolute path nor an abstract socket", EnvVar, path)
	}
	// Go writes a leading "@" as the abstract namespace's NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: dial %s: %w", path, err)
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: send to %s: %w", path, err)
	}
	return true, nil
}
