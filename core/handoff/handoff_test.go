package handoff

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Spec
		err      string
	}{
		{"ready only", "v1 ready=3", Spec{Ready: 3, Sockets: map[string]int{}}, ""},
		{"sockets", "v1 ready=3 tcp/:8080=4 udp/[::]:8443=5 tcp/127.0.0.1:2019=6",
			Spec{Ready: 3, Sockets: map[string]int{"tcp/:8080": 4, "udp/[::]:8443": 5, "tcp/127.0.0.1:2019": 6}}, ""},
		{"empty", "", Spec{}, "must start with"},
		{"other version", "v2 ready=3", Spec{}, "must start with"},
		{"no ready", "v1 tcp/:80=4", Spec{}, "no ready"},
		{"ready twice", "v1 ready=3 ready=4", Spec{}, "ready is named twice"},
		{"fd reused", "v1 ready=3 tcp/:80=3", Spec{}, "descriptor 3 is named twice"},
		{"stdin", "v1 ready=0", Spec{}, "≥ 3"},
		{"negative", "v1 ready=3 tcp/:80=-4", Spec{}, "≥ 3"},
		{"leading zero", "v1 ready=03", Spec{}, "≥ 3"},
		{"sign", "v1 ready=+3", Spec{}, "≥ 3"},
		{"unknown network", "v1 ready=3 unix/x=4", Spec{}, "not a socket key"},
		{"no address", "v1 ready=3 tcp/=4", Spec{}, "not a socket key"},
		{"no fd", "v1 ready=3 tcp/:80", Spec{}, "not NAME=FD"},
		{"key twice", "v1 ready=3 tcp/:80=4 tcp/:80=5", Spec{}, "named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			enc, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := Parse(enc); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip %q: %v, %v", enc, again, err)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, spec := range []Spec{
		{Ready: 2},
		{Ready: 3, Sockets: map[string]int{"tcp/a b:80": 4}},
		{Ready: 3, Sockets: map[string]int{"unix//run/x": 4}},
		{Ready: 3, Sockets: map[string]int{"tcp/:80": 1}},
	} {
		if v, err := Encode(spec); err == nil {
			t.Errorf("Encode(%v) = %q, want an error", spec, v)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts encodes and parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"v1 ready=3", "v1 ready=3 tcp/:8080=4 udp/[::]:8443=5", "v1 ready=3 tcp/=4", "v1  ready=3\ttcp/x=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse(s)
		if err != nil {
			return
		}
		enc, err := Encode(spec)
		if err != nil {
			t.Fatalf("Parse accepted %q but Encode refuses %v: %v", s, spec, err)
		}
		again, err := Parse(enc)
		if err != nil || !reflect.DeepEqual(again, spec) {
			t.Fatalf("round trip of %q: %v, %v", enc, again, err)
		}
	})
}

// TestInheritAdoptsSockets hands a real TCP listener, a UDP socket and a readiness pipe over
// by descriptor number in this process (as the new process of an upgrade receives them):
// Listen and ListenPacket adopt them instead of binding, an address not handed over is bound,
// an unused inherited socket is closed, Files duplicates everything open, and Ready writes the
// ready line once.
func TestInheritAdoptsSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	spare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()
	lf, _ := ln.(*net.TCPListener).File()
	uf, _ := pc.(*net.UDPConn).File()
	sf, _ := spare.(*net.TCPListener).File()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	tcpKey, udpKey := "configured:8080", "127.0.0.1:8443"
	env, err := Encode(Spec{Ready: int(wr.Fd()), Sockets: map[string]int{
		Key("tcp", tcpKey): int(lf.Fd()), Key("udp", udpKey): int(uf.Fd()), Key("tcp", "gone:1"): int(sf.Fd())}})
	if err != nil {
		t.Fatal(err)
	}
	var unset []string
	s, err := Inherit(func(k string) (string, bool) { return env, k == EnvVar }, func(k string) { unset = append(unset, k) })
	if err != nil {
		t.Fatal(err)
	}
	if !s.Child() || !reflect.DeepEqual(unset, []string{EnvVar}) {
		t.Fatalf("Child %v, unset %v", s.Child(), unset)
	}
	adopted, err := s.Listen("tcp", tcpKey)
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	if adopted.Addr().String() != ln.Addr().String() {
		t.Fatalf("adopted %s, handed %s", adopted.Addr(), ln.Addr())
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = adopted.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	if ac, err := adopted.Accept(); err != nil {
		t.Fatalf("accept on the adopted listener: %v", err)
	} else {
		ac.Close()
	}
	upc, err := s.ListenPacket("udp", udpKey)
	if err != nil {
		t.Fatal(err)
	}
	defer upc.Close()
	if upc.LocalAddr().String() != pc.LocalAddr().String() {
		t.Fatalf("adopted UDP %s, handed %s", upc.LocalAddr(), pc.LocalAddr())
	}
	fresh, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if got := s.CloseUnused(); !reflect.DeepEqual(got, []string{"tcp/gone:1"}) {
		t.Fatalf("CloseUnused = %v", got)
	}
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range files {
		keys = append(keys, f.Key)
	}
	CloseFiles(files)
	if want := []string{"tcp/127.0.0.1:0", "tcp/configured:8080", "udp/127.0.0.1:8443"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("Files keys %v, want %v", keys, want)
	}
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("second Ready: %v", err)
	}
	b, _ := io.ReadAll(rd)
	if string(b) != ReadyLine {
		t.Fatalf("readiness pipe %q", b)
	}
}

// TestInheritRefusesBadValue: a hand-off that does not parse is an error, never a fresh bind.
func TestInheritRefusesBadValue(t *testing.T) {
	if _, err := Inherit(func(k string) (string, bool) { return "v1 tcp/:80=4", true }, nil); err == nil {
		t.Fatal("want an error")
	}
	s, err := Inherit(func(string) (string, bool) { return "", false }, nil)
	if err != nil || s.Child() {
		t.Fatalf("no hand-off: %v, child %v", err, s.Child())
	}
}

// TestUpgradeFailures starts real executables that fail in each way an upgrade can: exit at
// once, close the pipe and keep running, and never answer (timeout). Each is an error naming
// the cause, and a second concurrent upgrade is refused.
func TestUpgradeFailures(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, _ := Inherit(func(string) (string, bool) { return "", false }, nil)
	if _, err := s.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"exits", "exit 3", "exit status 3"},
		{"closes the pipe", "exec 3>&-; exec sleep 30", "closed the readiness pipe"},
		{"wrong line", "echo nope >&3; exec sleep 30", `wrote "nope\n"`},
		{"times out", "exec sleep 30", "did not signal ready within"},
		{"ready", `case "$CONDUIT_HANDOFF" in "v1 ready=3 tcp/127.0.0.1:0=4") echo READY >&3;; esac; sleep 1`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &Upgrader{Path: script(strings.ReplaceAll(tc.name, " ", "-"), tc.body), Sockets: s, Timeout: time.Second}
			res, err := u.Upgrade(context.Background())
			if tc.want == "" {
				if err != nil || res.PID <= 0 || !reflect.DeepEqual(res.Sockets, []string{"tcp/127.0.0.1:0"}) {
					t.Fatalf("Upgrade = %+v, %v", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Upgrade error %v, want %q", err, tc.want)
			}
		})
	}
	u := &Upgrader{Path: script("slow", "exec sleep 30"), Sockets: s, Timeout: 2 * time.Second}
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := u.Upgrade(context.Background()); errs <- err }()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == ErrInProgress) == (e2 == ErrInProgress) {
		t.Fatalf("two concurrent upgrades: %v and %v; want exactly one ErrInProgress", e1, e2)
	}
}
