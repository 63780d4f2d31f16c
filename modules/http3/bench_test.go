package http3_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/tlstest"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProxyByProtocol sends small GETs through a real Conduit to an HTTP/1.1 upstream
// over HTTP/1.1, HTTP/2 and HTTP/3 (TLS 1.3 each), with 8 requests in flight, and reports
// the process's CPU time per request (client, Conduit and upstream share the process, so
// compare the rows with one another, not with docs/benchmarks.md).
func BenchmarkProxyByProtocol(b *testing.B) {
	ca := tlstest.NewCA(b, "bench CA")
	cert, key := tlsFiles(b, ca, b.TempDir(), "a.test")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	b.Cleanup(up.Close)
	srv := start(b, fmt.Sprintf("host: a.test\nport: 8443\ntls: {cert: %q, key: %q}\nhttp3: true\nproxy: %q\n", cert, key, up.URL))
	addr := srv.HostPort(8443)
	for _, proto := range []string{"h1", "h2", "h3"} {
		b.Run(proto, func(b *testing.B) {
			var c *http.Client
			switch proto {
			case "h3":
				c, _ = h3Client(b, ca, addr)
			default:
				c = tcpClient(b, ca, addr, proto == "h2")
			}
			b.SetParallelism(4) // 4 × GOMAXPROCS goroutines
			cpu0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get("https://a.test/")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
		})
	}
}
