package extauthz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/conduitproxy/conduit/core"
)

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

// conn is one gRPC client connection to a target, shared by every extAuthz block of a
// generation that names the same target and TLS settings, and closed with the generation.
type conn struct {
	cc     *grpc.ClientConn
	client authv3.AuthorizationClient
	err    error
}

// The roles of the memoised connection, checked at compile time.
var _ core.Stopper = (*conn)(nil)

// Stop implements core.Stopper: it closes the connection when the generation is retired.
func (c *conn) Stop(context.Context) error {
	if c.cc == nil {
		return nil
	}
	return c.cc.Close()
}

// clientFor returns the generation's shared client for target with t's TLS settings,
// recording problems at path.
func clientFor(ctx *core.SiteContext, target string, t *TLSConfig, path string) (authv3.AuthorizationClient, error) {
	key := "extauthz.conn\x00" + target
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
			grpc.WithUserAgent("conduit-extauthz"),
		)
		if err != nil {
			return &conn{err: fmt.Errorf("gRPC client for %q: %w", target, err)}
		}
		// Closed when the generation is retired (Stop) or fails to build (its context ends).
		context.AfterFunc(ctx.Global, func() { _ = cc.Close() })
		return &conn{cc: cc, client: authv3.NewAuthorizationClient(cc)}
	}
	c := core.MemoOf(ctx.Global, key, build)
	if c.err != nil {
		ctx.Errorf(path, "%v", c.err)
		return nil, c.err
	}
	return c.client, nil
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
