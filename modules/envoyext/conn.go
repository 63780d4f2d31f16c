// Package envoyext holds what the modules that speak Envoy's external gRPC services share
// (extauthz: envoy.service.auth.v3; extproc: envoy.service.ext_proc.v3): one gRPC client
// connection per target and TLS settings per generation, the `tls` block, the target rule,
// and header mutations (HeaderValueOption) with the names a service may not touch.
package envoyext

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/conduitproxy/conduit/core"
)

// TLSConfig is a block's `tls`: the service's trust store, a client certificate for mTLS and
// the name to verify.
type TLSConfig struct {
	// CA is a PEM file of the CAs that sign the service's certificate; the system roots
	// without it.
	CA string `json:"ca" doc:"a PEM file of the CAs that sign the service's certificate; the system roots without it"`
	// Cert and Key are the PEM client certificate and key presented to the service (mTLS).
	Cert string `json:"cert" doc:"the PEM client certificate presented to the service (mTLS)"`
	Key  string `json:"key" doc:"the PEM key of cert"`
	// ServerName is the name verified in the service's certificate; the target's host by
	// default.
	ServerName string `json:"serverName" doc:"the name verified in the service's certificate; the target's host by default"`
}

// ValidateTarget checks a `grpc` target: "host:port" or "dns:///host:port", never the
// Admin API; key names the block in the message ("extAuthz").
func ValidateTarget(ctx *core.SiteContext, target, path, key string) {
	hostport := target
	if rest, ok := strings.CutPrefix(target, "dns:///"); ok {
		hostport = rest
	} else if strings.Contains(target, "://") || strings.HasPrefix(target, "dns:") {
		ctx.Errorf(path, "must be host:port or dns:///host:port, got %q", target)
		return
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		ctx.Errorf(path, "must be host:port or dns:///host:port, got %q", target)
		return
	}
	if bind, hit := core.AimsAtAdmin(&url.URL{Scheme: "http", Host: hostport}, ctx.AdminBind()); hit {
		ctx.Errorf(path, "points at the Admin API (%s); %s must not call the Admin API", bind, key)
	}
}

// serviceConfig balances calls round-robin over every address the target resolves to.
const serviceConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// keepAlive pings a connection that carries an open call but has been silent for 30 s, so a
// dead service is noticed. Without PermitWithoutStream no ping is sent between calls, which
// keeps within the ping policy grpc-go servers enforce by default.
var keepAlive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}

// reconnect retries a lost service at most 2 s apart (gRPC's default waits up to 120 s), so
// requests stop failing soon after the service is back.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// conn is one gRPC client connection to a target, shared by every block of a generation
// that names the same target and TLS settings, and closed with the generation.
type conn struct {
	cc   *grpc.ClientConn
	err  error
	once sync.Once
}

// The roles of the memoised connection, checked at compile time.
var _ core.Stopper = (*conn)(nil)

// Stop implements core.Stopper: it closes the connection when the generation is retired.
func (c *conn) Stop(context.Context) error {
	c.close()
	return nil
}

// close closes the connection once (Stop, or the end of a generation that failed to build).
func (c *conn) close() {
	if c.cc != nil {
		c.once.Do(func() { _ = c.cc.Close() })
	}
}

// Conn returns the generation's shared client connection to target with t's TLS settings
// (plaintext when t is nil), recording problems at path (the block's `tls`).
func Conn(ctx *core.SiteContext, target string, t *TLSConfig, path string) (*grpc.ClientConn, error) {
	key := "envoyext.conn\x00" + target
	if t != nil {
		key += "\x00" + t.CA + "\x00" + t.Cert + "\x00" + t.Key + "\x00" + t.ServerName
	}
	build := func() *conn {
		creds, err := transportCredentials(target, t)
		if err != nil {
			return &conn{err: err}
		}
		cc, err := grpc.NewClient(target,
			grpc.WithTransportCredentials(creds),
			grpc.WithDefaultServiceConfig(serviceConfig),
			grpc.WithKeepaliveParams(keepAlive),
			grpc.WithConnectParams(reconnect),
			grpc.WithNoProxy(),
			grpc.WithUserAgent("conduit"),
		)
		if err != nil {
			return &conn{err: fmt.Errorf("gRPC client for %q: %w", target, err)}
		}
		c := &conn{cc: cc}
		// Closed when the generation is retired (Stop) or fails to build (its context ends).
		context.AfterFunc(ctx.Global, c.close)
		return c
	}
	c := core.MemoOf(ctx.Global, key, build)
	if c.err != nil {
		ctx.Errorf(path, "%v", c.err)
		return nil, c.err
	}
	return c.cc, nil
}

// transportCredentials builds plaintext credentials, or TLS ones from t.
func transportCredentials(target string, t *TLSConfig) (credentials.TransportCredentials, error) {
	if t == nil {
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(strings.TrimPrefix(target, "dns:///"))
		if err == nil {
			tc.ServerName = host
		}
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("reading ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s holds no PEM certificate", t.CA)
		}
		tc.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, fmt.Errorf("cert and key go together (mTLS)")
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(tc), nil
}
