package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// healthChecker probes a pool's upstreams actively: a HEAD request to healthCheck.path every
// intervalSecs. An upstream is marked unhealthy after unhealthyThreshold consecutive
// failures and healthy again after healthyThreshold passes; a pass is a 2xx or 3xx answer
// within timeoutMs (and within unhealthyLatencyMs when set) whose status is not listed in
// unhealthyStatus.
type healthChecker struct {
	pool       *pool
	path       string
	interval   time.Duration
	timeout    time.Duration
	unhealthyN int64
	healthyN   int64
	maxLatency time.Duration
	failStatus map[int]bool
	log        *slog.Logger
	client     *http.Client
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func newHealthChecker(hc *HealthCheckConfig, p *pool, log *slog.Logger) *healthChecker {
	c := &healthChecker{pool: p, path: "/__health__", interval: 10 * time.Second, timeout: 2 * time.Second,
		unhealthyN: 3, healthyN: 1, log: log, failStatus: map[int]bool{}}
	if hc.Path != "" {
		c.path = hc.Path
	}
	if hc.IntervalSecs != nil {
		c.interval = time.Duration(*hc.IntervalSecs) * time.Second
	}
	if hc.TimeoutMs != nil {
		c.timeout = ms(*hc.TimeoutMs)
	}
	if hc.UnhealthyThreshold != nil {
		c.unhealthyN = int64(*hc.UnhealthyThreshold)
	}
	if hc.HealthyThreshold != nil {
		c.healthyN = int64(*hc.HealthyThreshold)
	}
	if hc.UnhealthyLatencyMs != nil {
		c.maxLatency = ms(*hc.UnhealthyLatencyMs)
	}
	for _, s := range hc.UnhealthyStatus {
		c.failStatus[int(s)] = true
	}
	return c
}

// targets returns every upstream the checker watches: primaries (or group members) and
// the backup.
func (c *healthChecker) targets() []*upstream {
	var out []*upstream
	if len(c.pool.groups) > 0 {
		for _, g := range c.pool.groups {
			out = append(out, g.set.ups...)
		}
	} else {
		out = append(out, c.pool.set.Load().ups...)
	}
	if c.pool.backup != nil {
		out = append(out, c.pool.backup)
	}
	return out
}

// start runs one probe loop per checker until stop.
func (c *healthChecker) start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.interval)
		defer t.Stop()
		c.probeAll(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.probeAll(ctx)
			}
		}
	}()
}

func (c *healthChecker) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

func (c *healthChecker) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range c.targets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.probe(ctx, u)
		}()
	}
	wg.Wait()
}

// probe sends one HEAD request and updates u's active health.
func (c *healthChecker) probe(ctx context.Context, u *upstream) {
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := *u.url
	target.Path = joinPath(u.url.Path, c.path)
	if u.url.Path == "" || u.url.Path == "/" {
		target.Path = c.path
	}
	req, err := http.NewRequestWithContext(pctx, http.MethodHead, target.String(), nil)
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", "conduit-health-check")
	start := time.Now()
	resp, err := u.transport.RoundTrip(req)
	lat := time.Since(start)
	ok := err == nil && resp.StatusCode >= 200 && resp.StatusCode < 400 && !c.failStatus[resp.StatusCode]
	if err == nil {
		resp.Body.Close()
	}
	if ok && c.maxLatency > 0 && lat > c.maxLatency {
		ok = false
	}
	if ctx.Err() != nil {
		return // shutting down: not a verdict about the upstream
	}
	st := u.st
	st.probed.Store(true)
	if ok {
		st.probeLatencyNs.Store(int64(lat))
		st.consecFails.Store(0)
		if st.consecSuccesses.Add(1) >= c.healthyN && st.unhealthy.Load() {
			st.unhealthy.Store(false)
			st.recoveredAt.Store(time.Now().UnixNano())
			c.log.Info("upstream healthy again", "upstream", u.label)
		}
		return
	}
	st.consecSuccesses.Store(0)
	if st.consecFails.Add(1) >= c.unhealthyN && !st.unhealthy.Load() {
		st.unhealthy.Store(true)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		c.log.Warn("upstream unhealthy", "upstream", u.label, "status", status, "err", err)
	}
}
