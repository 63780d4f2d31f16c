// Command h3load is conduit-bench's HTTP/3 load generator (the Debian load generators have no
// HTTP/3): -c QUIC connections, each with -m requests in flight (quic-go's http3.Transport),
// for -d. Each connection first completes one checked request outside the window; then every
// request that completes inside the window counts, a 2xx with its latency, anything else as an
// error, and requests still in flight when it ends are dropped. It prints the totals as the
// "CB name value" lines conduit-bench reads (package loadstat).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/conduitproxy/conduit/cmd/conduit-bench/loadstat"
)

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

// String returns the flags given so far (flag.Value).
func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

// Set adds one "Name: value" header; a value without a name is an error (flag.Value).
func (h *headerFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, ":"); !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("-H %q: want \"Name: value\"", v)
	}
	*h = append(*h, v)
	return nil
}

// options are the command-line settings.
type options struct {
	url          string
	conns        int
	streams      int
	duration     time.Duration
	caFile       string
	expectBytes  int
	connectLimit time.Duration
	headers      headerFlags
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "https:// URL to GET")
	flag.IntVar(&o.conns, "c", 5, "QUIC connections")
	flag.IntVar(&o.streams, "m", 10, "requests in flight per connection")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured window")
	flag.StringVar(&o.caFile, "ca", "", "PEM certificate(s) to trust instead of the system roots")
	flag.IntVar(&o.expectBytes, "expect-bytes", -1, "the checked first response of each connection must have this many body bytes (-1: any)")
	flag.DurationVar(&o.connectLimit, "connect-timeout", 10*time.Second, "how long each connection may take to answer its first request (retried until then)")
	flag.Var(&o.headers, "H", "request header \"Name: value\" (repeatable)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "h3load:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if !strings.HasPrefix(o.url, "https://") || o.conns < 1 || o.streams < 1 || o.duration <= 0 {
		return errors.New("need -url https://..., -c ≥ 1, -m ≥ 1 and -d > 0")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return fmt.Errorf("-ca: %w", err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-ca %s: no PEM certificate", o.caFile)
		}
	}
	trs := make([]*http3.Transport, o.conns)
	for i := range trs {
		trs[i] = &http3.Transport{
			TLSClientConfig:    tlsConf.Clone(),
			QUICConfig:         &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: 30 * time.Second},
			DisableCompression: true,
		}
		defer trs[i].Close()
	}
	for i, tr := range trs {
		if err := connect(tr, o); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
	}
	start := time.Now()
	deadline := start.Add(o.duration)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	recs := make([]*loadstat.Recorder, o.conns*o.streams)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = &loadstat.Recorder{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, trs[i/o.streams], o, deadline, recs[i])
		}()
	}
	wg.Wait()
	var all loadstat.Recorder
	all.Merge(recs...)
	return all.Summarize(o.duration.Seconds()).WriteCB(os.Stdout)
}

// connect completes the connection's first request outside the window and checks it: a 200
// with -expect-bytes body bytes. A server that is not listening yet is retried until
// -connect-timeout.
func connect(tr *http3.Transport, o options) error {
	limit := time.Now().Add(o.connectLimit)
	for {
		n, status, err := get(context.Background(), tr, o)
		if err == nil && status != http.StatusOK {
			return fmt.Errorf("first request answered %d, want 200", status)
		}
		if err == nil && o.expectBytes >= 0 && n != int64(o.expectBytes) {
			return fmt.Errorf("first request: %d body bytes, want %d", n, o.expectBytes)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(limit) {
			return fmt.Errorf("first request: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get sends one GET and reads the whole body; it returns the body size and status.
func get(ctx context.Context, tr *http3.Transport, o options) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return 0, 0, err
	}
	for _, h := range o.headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return n, resp.StatusCode, err
}

// worker sends requests one after another on tr until the window ends, recording each one
// that completed inside it.
func worker(ctx context.Context, tr *http3.Transport, o options, deadline time.Time, rec *loadstat.Recorder) {
	for ctx.Err() == nil {
		t0 := time.Now()
		_, status, err := get(ctx, tr, o)
		t1 := time.Now()
		if t1.After(deadline) || ctx.Err() != nil {
			return // in flight when the window closed: not counted
		}
		if err != nil || status < 200 || status > 299 {
			rec.Fail()
			continue
		}
		rec.OK(float64(t1.Sub(t0).Nanoseconds()) / 1e3)
	}
}
