package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

func TestPriorityShedding(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	up := newNamed(t, "up", func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		return true
	})
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
limits: { maxInflightRequests: 4, priorityThreshold: 0.5 }
proxy:
  /hold: %[1]q
  /low: { targets: [%[1]q], priority: 10 }
  /high: { targets: [%[1]q], priority: 90 }
`, up.URL))
	base := srv.URL(8080)
	// Below the threshold everything passes.
	if code, _, _ := hit(t, http.DefaultClient, base+"/low", nil); code != 200 {
		t.Fatalf("low priority while idle: %d", code)
	}
	if code, _, _ := hit(t, http.DefaultClient, base+"/high", map[string]string{"X-Priority": "5"}); code != 200 {
		t.Fatalf("lowered priority while idle: %d", code)
	}
	var wg sync.WaitGroup
	defer func() { close(release); wg.Wait() }()
	for range 2 {
		awaitHeld(t, entered, hitAsync(t, &wg, base+"/hold"))
	}
	// 2 held + this one = 3 ≥ 0.5 × 4: shedding.
	code, body, _ := hit(t, http.DefaultClient, base+"/low", nil)
	if code != 503 || body != "Service Unavailable: load shedding\n" {
		t.Fatalf("low priority under load: %d %q", code, body)
	}
	if code, _, _ := hit(t, http.DefaultClient, base+"/high", nil); code != 200 {
		t.Fatalf("high priority under load: %d", code)
	}
	if code, _, _ := hit(t, http.DefaultClient, base+"/high", map[string]string{"Priority": "u=7"}); code != 503 {
		t.Fatalf("RFC 9218 u=7 lowers priority to 2: %d, want 503", code)
	}
	if code, _, _ := hit(t, http.DefaultClient, base+"/low", map[string]string{"X-Priority": "100"}); code != 503 {
		t.Fatalf("a client header must not raise priority: %d", code)
	}
}

func TestPerIPConcurrencyAndRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	up := newNamed(t, "up", func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return true
	})
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nlimits: { maxConnectionsPerIp: 1 }\nproxy: %q\n", up.URL))
	free := releaseOnCleanup(t, release)
	var wg sync.WaitGroup
	awaitHeld(t, entered, hitAsync(t, &wg, srv.URL(8080)+"/hold"))
	code, _, hdr := hit(t, http.DefaultClient, srv.URL(8080)+"/x", nil)
	free()
	wg.Wait()
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("second concurrent request from one address: %d", code)
	}
	if code, _, _ := hit(t, http.DefaultClient, srv.URL(8080)+"/x", nil); code != 200 {
		t.Fatalf("after the first finished: %d", code)
	}

	hang := make(chan struct{})
	defer close(hang)
	slow := newNamed(t, "slow", func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return false
	})
	srv2 := servertest.Start(t, fmt.Sprintf("port: 8080\nlimits: { timeoutSecs: 1 }\nproxy: %q\n", slow.URL))
	if code, _, _ := hit(t, http.DefaultClient, srv2.URL(8080)+"/", nil); code != 504 {
		t.Fatalf("limits.timeoutSecs: %d, want 504", code)
	}
}

func TestSlowUploadAndKeepaliveLimit(t *testing.T) {
	up := newNamed(t, "up", func(w http.ResponseWriter, r *http.Request) bool {
		_, _ = io.Copy(io.Discard, r.Body)
		return true
	})
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nlimits: { minUploadRateBytesPerSec: 1000, keepaliveRequestLimit: 2 }\nproxy: %q\n", up.URL))
	conn, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body that stalls after 10 of 100000 bytes is cut off with 408 (1 s of burst, then
	// the next byte is due).
	fmt.Fprintf(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 408 {
		t.Fatalf("stalled upload: %d, want 408", resp.StatusCode)
	}

	// keepaliveRequestLimit: the second request on a connection is told to close it.
	c2, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	br := bufio.NewReader(c2)
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(c2, "GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Close; got != (i == 2) {
			t.Fatalf("request %d: Connection: close = %v", i, got)
		}
	}
}
