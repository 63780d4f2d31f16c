// Package http3 serves HTTP/3 (github.com/quic-go/quic-go) on the UDP port of TLS sites
// with `http3` (or `global.http3`), and advertises it with Alt-Svc on the sites' HTTP/1.1
// and HTTP/2 answers.
//
// The module owns no socket: its site instance is a core.PacketService, so the server opens
// the UDP socket beside the site's TCP listener, keeps it across reloads, and hands this
// module the port's dispatcher and TLS configuration. HTTP/3 requests therefore take the
// same path as the others: canonical request identity, site selection, every stage of the
// site's pipeline, certificates chosen per handshake by SNI (docs/http3.md).
package http3

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	qhttp3 "github.com/quic-go/quic-go/http3"

	"github.com/conduitproxy/conduit/core"
)

func init() {
	core.Register(core.Module{
		ID:          "http.servers.http3",
		Feature:     "http3",
		Description: "HTTP/3 over QUIC on the UDP port of TLS sites, advertised with Alt-Svc",
		Stage:       core.StageResponseHeaders,
		Order:       30, // after hot reload and the response headers module
		SiteKeys:    []string{"http3"},
		GlobalKeys:  []string{"http3"},
		AlwaysOn:    true, // global.http3 applies to every TLS site
		Global:      provisionGlobal,
		SiteRoles:   core.RoleMiddleware | core.RolePacketService,
		Site:        provision,
		ConfigTypes: map[string]any{"http3": Config{}},
	})
}

// Memo and shared-store keys.
const (
	globalKey = "http.servers.http3/global"
	portsKey  = "http.servers.http3/ports"
	advertKey = "http.servers.http3/advert:"
)

// globalDefault is global.http3, decoded once per generation.
type globalDefault struct {
	set bool
	cfg Config
}

// portOwner is the first site of a port that serves HTTP/3: its settings are the port's.
type portOwner struct {
	path string
	cfg  Config
}

// portOwners maps a port to its first HTTP/3 site in one generation.
type portOwners map[int]portOwner

// advert is the Alt-Svc value of one configured port, shared by every generation: the port's
// packet server sets it when it opens the UDP socket, every generation's instances send it.
type advert struct {
	v atomic.Pointer[[]string]
}

func newAdvert() *advert { return &advert{} }

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware    = (*instance)(nil)
	_ core.HeaderHook    = (*instance)(nil)
	_ core.PacketService = (*instance)(nil)
)

// instance is the module's part of one site.
type instance struct {
	cfg    Config
	advert *advert
}

func globalOf(ctx *core.GlobalContext) *globalDefault {
	return core.MemoOf(ctx, globalKey, func() *globalDefault {
		var g globalDefault
		g.set = ctx.Decode("http3", &g.cfg)
		return &g
	})
}

func provisionGlobal(ctx *core.GlobalContext) core.Instance {
	globalOf(ctx)
	return nil
}

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	// path is where the site's settings come from: its own key, or global.http3 (name says
	// which site took it from there).
	path, name := ctx.Path("http3"), ctx.Path("http3")
	if !ctx.Decode("http3", &c) {
		g := globalOf(ctx.Global)
		if !g.set || !ctx.Site.TLS {
			return nil // global.http3 is the default of TLS sites only
		}
		c = g.cfg
		path, name = "global.http3", "global.http3 (for "+siteName(ctx.Site)+")"
	}
	if !c.Enabled {
		return nil
	}
	if !ctx.Site.TLS {
		ctx.Errorf(path, "needs a TLS site (a tls block with cert and key, or acme): HTTP/3 runs over QUIC, which is always encrypted")
		return nil
	}
	owners := core.MemoOf(ctx.Global, portsKey, func() portOwners { return portOwners{} })
	port := ctx.Site.Port
	if o, ok := owners[port]; !ok {
		owners[port] = portOwner{path: name, cfg: c}
	} else if o.cfg.MaxStreams != c.MaxStreams || o.cfg.IdleTimeout != c.IdleTimeout {
		ctx.Errorf(path, "maxStreams and idleTimeoutSecs of %s differ from %s on port %d; QUIC settings are per port (one UDP socket serves every site of the port)", siteName(ctx.Site), o.path, port)
	}
	return &instance{cfg: c, advert: core.SharedOf(ctx.Shared, advertKey+strconv.Itoa(port), newAdvert)}
}

// siteName names a site in messages: its path, or "the site" in the single-site shape.
func siteName(s *core.Site) string {
	if s.Path == "" {
		return "the site"
	}
	return s.Path
}

// Wrap implements core.Middleware: with advertise on, every answer of the site over HTTP/1.1
// or HTTP/2 carries Alt-Svc once the port's UDP socket is open.
func (i *instance) Wrap(next http.Handler) http.Handler {
	if !i.cfg.Advertise {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 3 {
			core.OnHeader(r, i)
		}
		next.ServeHTTP(w, r)
	})
}

// BeforeHeader implements core.HeaderHook.
func (i *instance) BeforeHeader(_ *http.Request, h http.Header, _ int) {
	if v := i.advert.v.Load(); v != nil {
		h["Alt-Svc"] = *v
	}
}

// PacketProtocol implements core.PacketService.
func (i *instance) PacketProtocol() string { return "HTTP/3" }

// quicConfig returns the QUIC settings of a connection: 0-RTT is never accepted (a replayed
// early request could repeat an unsafe method), the handshake timeout and the amplification
// limit before address validation are quic-go's. The server PINGs at half the idle timeout,
// so that a request that takes longer than the idle timeout (a slow upstream) keeps its
// connection; a connection without a request in progress is closed by connWatch instead,
// and a peer that stops answering by QUIC's idle timeout.
func (c Config) quicConfig() *quic.Config {
	return &quic.Config{MaxIncomingStreams: c.MaxStreams, MaxIdleTimeout: c.IdleTimeout, KeepAlivePeriod: c.IdleTimeout / 2, Allow0RTT: false}
}

// NewPacketServer implements core.PacketService: an HTTP/3 server on the port's UDP socket,
// serving the port's dispatcher with its TLS configuration (h3 as the only ALPN protocol).
// Each new connection takes the settings of the port's first HTTP/3 site in the current
// generation, so a reload applies to new connections.
func (i *instance) NewPacketServer(cfg core.PacketServerConfig) (core.PacketServer, error) {
	port := cfg.Port
	if ua, ok := cfg.Addr.(*net.UDPAddr); ok {
		port = ua.Port
	}
	v := []string{`h3=":` + strconv.Itoa(port) + `"; ma=2592000`}
	i.advert.v.Store(&v)
	first := i.cfg
	current := func() Config {
		if cur, ok := cfg.Current().(*instance); ok {
			return cur.cfg
		}
		return first
	}
	qc := first.quicConfig()
	qc.GetConfigForClient = func(*quic.ClientInfo) (*quic.Config, error) {
		return current().quicConfig(), nil
	}
	return &qhttp3.Server{
		TLSConfig:      cfg.TLS,
		QUICConfig:     qc,
		Handler:        newStripHandler(cfg.Handler),
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		IdleTimeout:    cfg.IdleTimeout,
		Logger:         cfg.Logger,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return watchConn(ctx, c, current().IdleTimeout)
		},
	}, nil
}
