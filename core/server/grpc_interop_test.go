package server_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// grpcInteropCases are the grpc-go interop cases that need no cloud credentials or xDS
// (test-components.md §1b): unary, every streaming shape, deadlines, cancellation, status
// codes and messages, metadata and trailers, unimplemented methods and services.
var grpcInteropCases = []string{
	"empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
	"empty_stream", "timeout_on_sleeping_server", "cancel_after_begin",
	"cancel_after_first_response", "status_code_and_message", "special_status_message",
	"custom_metadata", "unimplemented_method", "unimplemented_service",
}

// startGRPCInteropServer runs the official interop server (h2c) on a free loopback port and
// stops it by PID when the test ends.
func startGRPCInteropServer(t *testing.T) int {
	t.Helper()
	bin := tool(t, "grpc-interop-server")
	port := testtool.FreePort(t)
	cmd := exec.Command(bin, "-port", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("grpc interop server did not listen on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGRPCInterop runs every interop case through Conduit, with the client on an h2c listener
// and on a TLS listener, and the proxy speaking h2c to the interop server.
func TestGRPCInterop(t *testing.T) {
	client := tool(t, "grpc-interop-client")
	backend := startGRPCInteropServer(t)
	ca := tlstest.NewCA(t, "gRPC CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "localhost").Write(t, dir, "s")
	caFile := ca.WriteCA(t, dir, "ca")
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - port: 8080
    http2: {h2c: true}
    proxy:
      /: {targets: ["http://127.0.0.1:%d"], http2: true}
  - port: 8443
    tls: {cert: %q, key: %q}
    proxy:
      /: {targets: ["http://127.0.0.1:%d"], http2: true}
`, backend, cert, key, backend))
	for _, mode := range []string{"h2c", "tls"} {
		port := 8080
		if mode == "tls" {
			port = 8443
		}
		_, p, _ := net.SplitHostPort(srv.HostPort(port))
		for _, tc := range grpcInteropCases {
			t.Run(mode+"/"+tc, func(t *testing.T) {
				args := []string{"-server_host", "127.0.0.1", "-server_port", p, "-test_case", tc}
				if mode == "tls" {
					args = append(args, "-use_tls", "-use_test_ca", "-ca_file", filepath.Clean(caFile), "-server_host_override", "localhost")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, client, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("%s through Conduit (%s): %v\n%s", tc, mode, err, out)
				}
			})
		}
	}
}
