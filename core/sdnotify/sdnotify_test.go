package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestNotify sends to a real unixgram socket (a path and an abstract one) and reads the
// datagram back; an unset variable sends nothing, a relative path is refused.
func TestNotify(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{filepath.Join(dir, "notify.sock"), "@conduit-sdnotify-test-" + filepath.Base(dir)} {
		t.Run(name, func(t *testing.T) {
			pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			lookup := func(k string) (string, bool) { return name, k == EnvVar }
			sent, err := Notify(lookup, "MAINPID=42\nREADY=1")
			if err != nil || !sent {
				t.Fatalf("Notify = %v, %v", sent, err)
			}
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 256)
			n, err := pc.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != "MAINPID=42\nREADY=1" {
				t.Fatalf("datagram %q", got)
			}
		})
	}
	for _, tc := range []struct {
		name, value string
		set, sent   bool
		wantErr     bool
	}{
		{"unset", "", false, false, false},
		{"empty", "", true, false, false},
		{"relative path", "notify.sock", true, false, true},
		{"no listener", filepath.Join(dir, "absent.sock"), true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := Notify(func(string) (string, bool) { return tc.value, tc.set }, "READY=1")
			if sent != tc.sent || (err != nil) != tc.wantErr {
				t.Fatalf("Notify = %v, %v", sent, err)
			}
		})
	}
}
