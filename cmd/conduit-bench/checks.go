package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// endpoint is where the load generator sends a row's requests: the HTTP/1.1, h2c and TLS
// listeners ("" when the selected modes need none), and the headers every request carries.
type endpoint struct {
	h1, h2c, tls string
	h3           string   // UDP address of the HTTP/3 listener ("" for a row without HTTP/3)
	headers      []string // "Name: value"
}

// addr returns the listener a mode uses.
func (e endpoint) addr(listener string) string {
	switch listener {
	case "h2c":
		return e.h2c
	case "tls":
		return e.tls
	case "h3":
		return e.h3
	}
	return e.h1
}

// get sends one GET to the HTTP/1.1 listener with the endpoint's headers (unless bare).
func (e endpoint) get(path string, bare bool) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+e.h1+path, nil)
	if err != nil {
		return nil, nil, err
	}
	if !bare {
		for _, h := range e.headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

// checkOneRequest sends one GET through the endpoint and verifies it returns the upstream's body.
func checkOneRequest(ep endpoint, body string) error {
	resp, got, err := ep.get("/", false)
	if err != nil {
		return fmt.Errorf("first request: %w", err)
	}
	if resp.StatusCode != http.StatusOK || string(got) != body {
		return fmt.Errorf("first request answered %q with %d body bytes, want 200 with the %d-byte upstream body",
			resp.Status, len(got), len(body))
	}
	return nil
}

// checkAuthRequired proves an auth row really checks: the same request without the token
// must be refused with 401.
func checkAuthRequired(_ *bench, ep endpoint) error {
	resp, _, err := ep.get("/", true)
	if err != nil {
		return fmt.Errorf("request without token: %w", err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("request without token answered %q, want 401: auth is not active", resp.Status)
	}
	return nil
}

// checkDeniedPath proves an authorization row asks its service: the harness's service
// denies /bench-denied (./cmd/conduit-bench/authz), so the proxy must answer it 403.
func checkDeniedPath(_ *bench, ep endpoint) error {
	resp, _, err := ep.get("/bench-denied", false)
	if err != nil {
		return fmt.Errorf("authorization check: %w", err)
	}
	if resp.StatusCode != http.StatusForbidden {
		return fmt.Errorf("authorization check: /bench-denied answered %q, want 403: the service is not asked", resp.Status)
	}
	return nil
}

// checkSpread returns a check that the balancing rows reach at least min of the three
// upstreams within 60 requests; each upstream listener answers with X-Upstream:
// "<port> <request id>". Round-robin must reach all three; p2c picks the better of two by
// latency, which need not spread sequential requests over all three.
func checkSpread(min int) func(*bench, endpoint) error {
	return func(_ *bench, ep endpoint) error {
		seen := map[string]int{}
		for i := 0; i < 60; i++ {
			resp, _, err := ep.get("/", false)
			if err != nil {
				return fmt.Errorf("spread check: %w", err)
			}
			port, _, _ := strings.Cut(resp.Header.Get("X-Upstream"), " ")
			seen[port]++
		}
		delete(seen, "")
		fmt.Printf("conduit-bench:   spread of 60 sequential requests over upstream ports: %v\n", seen)
		if len(seen) < min {
			return fmt.Errorf("60 requests reached %d upstream(s) %v, want %d", len(seen), seen, min)
		}
		return nil
	}
}

// checkCacheHit proves the cache row serves hits: a second request must carry the same
// upstream request id (X-Upstream) as the first, i.e. it did not reach the upstream.
func checkCacheHit(_ *bench, ep endpoint) error {
	var ids []string
	for i := 0; i < 2; i++ {
		resp, _, err := ep.get("/", false)
		if err != nil {
			return fmt.Errorf("cache check: %w", err)
		}
		ids = append(ids, resp.Header.Get("X-Upstream"))
	}
	if ids[0] == "" || ids[0] != ids[1] {
		return fmt.Errorf("cache check: two requests reached the upstream (X-Upstream %q then %q): not a cache hit", ids[0], ids[1])
	}
	return nil
}

// checkHeader returns a check that responses carry name: value (a script or plugin row's
// middleware ran).
func checkHeader(name, value string) func(*bench, endpoint) error {
	return func(_ *bench, ep endpoint) error {
		resp, _, err := ep.get("/", false)
		if err != nil {
			return fmt.Errorf("header check: %w", err)
		}
		if got := resp.Header.Get(name); got != value {
			return fmt.Errorf("header check: %s is %q, want %q: the middleware is not active", name, got, value)
		}
		return nil
	}
}

// checkMetrics proves the metrics endpoint is on.
func checkMetrics(_ *bench, ep endpoint) error {
	resp, body, err := ep.get("/__metrics__", false)
	if err != nil {
		return fmt.Errorf("metrics check: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "conduit_") {
		return fmt.Errorf("metrics check: GET /__metrics__ answered %q without conduit_ series", resp.Status)
	}
	return nil
}

// checkRedisUsed proves the Redis rate-limit row keeps its buckets in Redis.
func checkRedisUsed(b *bench, ep endpoint) error {
	if _, _, err := ep.get("/", false); err != nil {
		return fmt.Errorf("redis check: %w", err)
	}
	n, err := redisDBSize(b.svc.redisAddr)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("redis check: redis-server holds no key after a request: the limiter does not use it")
	}
	return nil
}

// startTap attaches `conduit tap --admin <addr> --json` to the running Conduit, pinned to the
// load CPU, and waits until it prints an event for a request sent through ep.
func (b *bench) startTap(d tmplData, ep endpoint) (*proc, error) {
	bin, err := b.conduitBinary(false)
	if err != nil {
		return nil, err
	}
	if err := waitListening(nil, d.AdminAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	logPath := d.Dir + "/tap.out"
	p, err := startProc("tap", b.cfg.cpuLoad, logPath, nil, bin, "tap", "--admin", d.AdminAddr, "--json")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return nil, fmt.Errorf("conduit tap exited: %v: %s", p.waitErr, p.logTail(3))
		}
		_, _, _ = ep.get("/", false)
		if out, _ := os.ReadFile(logPath); strings.HasPrefix(string(out), "{") || strings.Contains(string(out), "\n{") {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("conduit tap printed no event within 10 s: %s", p.logTail(3))
}
