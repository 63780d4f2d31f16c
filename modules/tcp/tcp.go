// Package tcp is the site's `tcp` block (feature tcp, full bundle): a layer-4 proxy. Every
// connection accepted on the site's port (after TLS termination when the site has a tls
// block) is relayed byte for byte to one of the targets, chosen by strategy, skipping
// targets that recently refused connections. Each direction is half-closed on its own (a FIN
// from one side does not cut the other), and idle and total timeouts bound every
// connection. Optionally a PROXY protocol v1/v2 header tells the upstream who the client is.
// The site's instance is a core.ConnHandler: the server gives it the port's raw
// connections and serves no HTTP there. See docs/tcp.md.
package tcp

import (
	"context"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/telemetry"
)

func init() {
	core.Register(core.Module{
		ID:          "stream.tcp",
		Feature:     "tcp",
		Description: "TCP proxy: a site's port relayed to upstream host:port targets, with TLS termination and PROXY protocol",
		SiteKeys:    []string{"tcp"},
		SiteRoles:   core.RoleConnHandler,
		Site:        provision,
		ConfigTypes: map[string]any{"tcp": Config{}},
		Provides: []core.SiteValueProvider{core.RawConnections.Provide(func(ctx *core.SiteContext) (bool, bool) {
			_, ok := ctx.Section("tcp")
			return ok, ok
		})},
	})
}

// Config is the site's `tcp` block.
type Config struct {
	// Targets are the upstreams, "host:port" each (required).
	Targets []string `json:"targets" cfg:"required" doc:"the upstreams, host:port each (a port from 1 to 65535, no scheme)"`
	// Strategy picks a target: round-robin (default), random or least-conn.
	Strategy string `json:"strategy" enum:"|round-robin|roundrobin|random|least-conn|leastconn|least-connections" enumcase:"fold" default:"\"round-robin\"" doc:"how a target is picked"`
	// ConnectTimeoutMs bounds each connection attempt to a target. Default 5000.
	ConnectTimeoutMs *uint64 `json:"connectTimeoutMs" default:"5000" minimum:"1" doc:"bounds each connection attempt to a target"`
	// IdleTimeoutMs closes a connection when no byte moved in either direction for this
	// long, and bounds each write. Default 600000 (10 minutes).
	IdleTimeoutMs *uint64 `json:"idleTimeoutMs" default:"600000" minimum:"1" doc:"closes a connection when no byte moved in either direction for this long, and bounds each write"`
	// MaxDurationMs closes a connection this long after it was accepted; 0 (default) means
	// no limit.
	MaxDurationMs uint64 `json:"maxDurationMs" default:"0" doc:"closes a connection this long after it was accepted; 0 means no limit"`
	// ProxyProtocol sends a PROXY protocol header ("v1" or "v2") to the upstream first.
	ProxyProtocol string `json:"proxyProtocol" enum:"|v1|v2" enumcase:"fold" doc:"sends a PROXY protocol header (v1 or v2) to the upstream first"`
	// MaxConnections caps the site's concurrent connections (over reloads); 0 means no cap.
	MaxConnections uint32 `json:"maxConnections" default:"0" doc:"caps the site's concurrent connections (over reloads); 0 means no cap"`
	// MaxFails failed connection attempts in a row mark a target down for FailTimeoutMs;
	// 0 never marks one down. Default 1.
	MaxFails *uint32 `json:"maxFails" default:"1" doc:"failed connection attempts in a row that mark a target down for failTimeoutMs; 0 never marks one down"`
	// FailTimeoutMs is how long a target marked down is skipped. Default 10000.
	FailTimeoutMs *uint64 `json:"failTimeoutMs" default:"10000" doc:"how long a target marked down is skipped"`
	// AccessLog logs one line per connection (default true).
	AccessLog *bool `json:"accessLog" default:"true" doc:"logs one line per connection"`
}

// Defaults of the tcp block.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultFailTimeout    = 10 * time.Second
	DefaultMaxFails       = 1
)

// proxy is the instance of one tcp site.
type proxy struct {
	targets        []*target
	pick           picker
	dialer         net.Dialer
	idle           time.Duration
	maxDuration    time.Duration
	proxyProto     int // 0, 1 or 2
	maxConns       int64
	conns          *atomic.Int64 // the site's open connections, shared over reloads
	maxFails       uint32
	failTimeout    time.Duration
	accessLog      bool
	log            *slog.Logger
	m              *siteMetrics
	logRefusedLast atomic.Int64
}

var _ core.ConnAdmitter = (*proxy)(nil)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("tcp", &c) {
		return nil
	}
	path := ctx.Path("tcp")
	p := &proxy{
		dialer:      net.Dialer{Timeout: msOr(c.ConnectTimeoutMs, DefaultConnectTimeout), KeepAlive: 30 * time.Second},
		idle:        msOr(c.IdleTimeoutMs, DefaultIdleTimeout),
		maxDuration: msOr(&c.MaxDurationMs, 0),
		maxConns:    int64(c.MaxConnections),
		maxFails:    DefaultMaxFails,
		failTimeout: msOr(c.FailTimeoutMs, DefaultFailTimeout),
		accessLog:   c.AccessLog == nil || *c.AccessLog,
		log:         ctx.Logger,
	}
	if c.MaxFails != nil {
		p.maxFails = *c.MaxFails
	}
	if c.ConnectTimeoutMs != nil && *c.ConnectTimeoutMs == 0 {
		ctx.Errorf(config.Join(path, "connectTimeoutMs"), "must be at least 1")
	}
	if c.IdleTimeoutMs != nil && *c.IdleTimeoutMs == 0 {
		ctx.Errorf(config.Join(path, "idleTimeoutMs"), "must be at least 1 (a connection without an idle bound would hold its sockets forever)")
	}
	switch strings.ToLower(c.ProxyProtocol) {
	case "":
	case "v1":
		p.proxyProto = 1
	case "v2":
		p.proxyProto = 2
	default:
		ctx.Errorf(config.Join(path, "proxyProtocol"), "must be v1 or v2, got %q", c.ProxyProtocol)
	}
	var ok bool
	if p.pick, ok = newPicker(c.Strategy); !ok {
		ctx.Errorf(config.Join(path, "strategy"), "must be round-robin, random or least-conn, got %q", c.Strategy)
	}
	if c.Targets != nil && len(c.Targets) == 0 {
		ctx.Errorf(config.Join(path, "targets"), "must list at least one host:port")
	}
	for i, t := range c.Targets {
		addr, err := ParseTarget(t)
		if err != nil {
			ctx.Errorf(config.Index(config.Join(path, "targets"), i), "%v", err)
			continue
		}
		p.targets = append(p.targets, core.SharedOf(ctx.Shared, "stream.tcp/target/"+addr, func() *target { return &target{addr: addr} }))
	}
	p.conns = core.SharedOf(ctx.Shared, "stream.tcp/conns/"+ctx.Site.HostPort(), func() *atomic.Int64 { return new(atomic.Int64) })
	p.m = newSiteMetrics(ctx.Global.Metrics, ctx.Site.Label, p.targets)
	return p
}

// ParseTarget checks a target ("host:port", "[::1]:6379") and returns it with the host
// lower-cased: a host name or IP literal and a port from 1 to 65535.
func ParseTarget(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", targetError(s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
		return "", targetError(s)
	}
	for _, r := range host {
		if r <= ' ' || r == '/' || r == '@' || r == '?' || r == '#' || r >= 0x7f {
			return "", targetError(s)
		}
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

type targetError string

// Error implements error.
func (e targetError) Error() string {
	return "must be host:port (a port from 1 to 65535, no scheme), got " + strconv.Quote(string(e))
}

// msOr returns an optional millisecond setting as a duration, def when absent.
func msOr(ms *uint64, def time.Duration) time.Duration {
	if ms == nil {
		return def
	}
	return time.Duration(min(*ms, uint64(math.MaxInt64/time.Millisecond))) * time.Millisecond
}

// AdmitConn implements core.ConnAdmitter: maxConnections counts c from its accept, before
// the TLS handshake of a TLS port, so a connection over the limit is closed at once.
func (p *proxy) AdmitConn(c net.Conn) (release func(), ok bool) {
	if n := p.conns.Add(1); p.maxConns > 0 && n > p.maxConns {
		p.conns.Add(-1)
		p.m.refused.Inc()
		p.logRefused(c)
		return nil, false
	}
	return func() { p.conns.Add(-1) }, true
}

// ServeConn implements core.ConnHandler: it connects to a target and relays c to it. The
// server admitted c first (AdmitConn), which counted it against maxConnections.
func (p *proxy) ServeConn(ctx context.Context, c net.Conn) {
	start := time.Now()
	defer c.Close()
	p.m.active.Inc()
	defer p.m.active.Dec()

	up, t := p.connect(ctx)
	if up == nil {
		p.m.noUpstream.Inc()
		if p.accessLog {
			p.log.Warn("tcp connection: no target answered", "client", c.RemoteAddr().String(), "duration_ms", time.Since(start).Milliseconds())
		}
		return
	}
	defer t.active.Add(-1)
	stop := context.AfterFunc(ctx, func() {
		_ = c.Close()
		_ = up.Close()
	})
	defer stop()
	var res result
	if p.proxyProto != 0 {
		hdr := proxyHeader(p.proxyProto, c.RemoteAddr(), c.LocalAddr())
		_ = up.SetWriteDeadline(time.Now().Add(p.idle))
		if _, err := up.Write(hdr); err != nil {
			res.end = "upstream error"
			res.err = err
		}
	}
	if res.err == nil {
		res = relay(c, up, p.idle, p.maxDuration)
	}
	if ctx.Err() != nil {
		res.end = "shutdown"
	}
	_ = up.Close()
	d := time.Since(start)
	p.m.observe(t, res, d)
	if p.accessLog {
		attrs := []any{"client", c.RemoteAddr().String(), "upstream", t.addr, "bytes_in", res.in, "bytes_out", res.out,
			"duration_ms", d.Milliseconds(), "end", res.end}
		if res.err != nil {
			attrs = append(attrs, "err", res.err.Error())
		}
		p.log.Info("tcp connection", attrs...)
	}
}

// logRefused logs a connection refused by maxConnections, at most once a second.
func (p *proxy) logRefused(c net.Conn) {
	now := time.Now().UnixNano()
	last := p.logRefusedLast.Load()
	if now-last < int64(time.Second) || !p.logRefusedLast.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("tcp connection refused: maxConnections reached", "client", c.RemoteAddr().String(), "max", p.maxConns)
}

// connect dials the targets in the strategy's order, skipping those marked down (unless all
// are), and returns the first connection with its target (whose active count it raised).
func (p *proxy) connect(ctx context.Context) (net.Conn, *target) {
	for _, t := range p.pick.order(p.targets, time.Now()) {
		t.active.Add(1)
		up, err := p.dialer.DialContext(ctx, "tcp", t.addr)
		if err == nil {
			t.succeeded()
			return up, t
		}
		t.active.Add(-1)
		p.m.connectErrors(t).Inc()
		if t.failed(p.maxFails, p.failTimeout) {
			p.log.Warn("tcp target marked down", "upstream", t.addr, "for", p.failTimeout.String(), "err", err.Error())
		} else {
			p.log.Debug("tcp target did not answer", "upstream", t.addr, "err", err.Error())
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil
}

// siteMetrics are the tcp metrics of one site, looked up once per generation.
type siteMetrics struct {
	active     *telemetry.Metric
	refused    *telemetry.Metric
	noUpstream *telemetry.Metric
	in, out    *telemetry.Metric
	duration   *telemetry.Metric
	byTarget   map[*target]*targetMetrics
}

type targetMetrics struct {
	connections *telemetry.Metric
	connectErr  *telemetry.Metric
}

// Metric names (docs/tcp.md).
const (
	ConnectionsTotal          = "conduit_tcp_connections_total"
	ActiveConnections         = "conduit_tcp_active_connections"
	RefusedTotal              = "conduit_tcp_refused_connections_total"
	ConnectErrorsTotal        = "conduit_tcp_connect_errors_total"
	BytesTotal                = "conduit_tcp_bytes_total"
	ConnectionDurationSeconds = "conduit_tcp_connection_duration_seconds"
)

func newSiteMetrics(reg *telemetry.Registry, site string, targets []*target) *siteMetrics {
	refused := reg.Counter(RefusedTotal, "TCP connections closed without an upstream: over maxConnections, or no target answered.", "site", "reason")
	bytes := reg.Counter(BytesTotal, "Bytes relayed by the TCP proxy: in from clients, out to clients.", "site", "direction")
	conns := reg.Counter(ConnectionsTotal, "TCP connections relayed, by upstream, when they ended.", "site", "upstream")
	cerr := reg.Counter(ConnectErrorsTotal, "Failed connection attempts to TCP targets.", "site", "upstream")
	m := &siteMetrics{
		active:     reg.Gauge(ActiveConnections, "Open TCP proxy connections.", "site").With(site),
		refused:    refused.With(site, "max_connections"),
		noUpstream: refused.With(site, "no_upstream"),
		in:         bytes.With(site, "in"),
		out:        bytes.With(site, "out"),
		duration:   reg.Histogram(ConnectionDurationSeconds, "Duration of relayed TCP connections.", []float64{0.01, 0.1, 1, 10, 60, 600, 3600}, "site").With(site),
		byTarget:   map[*target]*targetMetrics{},
	}
	for _, t := range targets {
		m.byTarget[t] = &targetMetrics{connections: conns.With(site, t.addr), connectErr: cerr.With(site, t.addr)}
	}
	return m
}

func (m *siteMetrics) connectErrors(t *target) *telemetry.Metric { return m.byTarget[t].connectErr }

func (m *siteMetrics) observe(t *target, r result, d time.Duration) {
	m.byTarget[t].connections.Inc()
	m.in.Add(float64(r.in))
	m.out.Add(float64(r.out))
	m.duration.Observe(d.Seconds())
}
