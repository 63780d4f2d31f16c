package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"time"
)

// transportSettings are everything that makes two routes' upstream connections
// interchangeable; routes with equal settings share one keep-alive pool, and the pool
// survives reloads (it lives in the server's shared store).
type transportSettings struct {
	connect     time.Duration
	firstByte   time.Duration
	maxIdle     int
	idleTimeout time.Duration
	http2       bool
	h2c         bool
	verify      bool
	serverName  string
	// roots verifies https:// upstreams (the site's tls.ca added to the system roots); nil
	// means the system roots. rootsID identifies its content, for the pool key.
	roots   *x509.CertPool
	rootsID string
}

func (ts transportSettings) key() string {
	return fmt.Sprintf("proxy.transport|%v|%v|%d|%v|%v|%v|%v|%s|%s", ts.connect, ts.firstByte, ts.maxIdle, ts.idleTimeout, ts.http2, ts.h2c, ts.verify, ts.serverName, ts.rootsID)
}

// tlsConfig is the client TLS configuration both upstream clients start from: verification
// (upstreamTls.verify) against the site's trust store.
func (ts transportSettings) tlsConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: !ts.verify, //nolint:gosec // upstreamTls.verify: false is the user's explicit choice
		RootCAs:            ts.roots,
	}
}

// Defaults chosen for a proxy that keeps hot pools to a handful of upstreams (Go's own
// default of 2 idle connections per host is far too small for that).
const (
	defaultConnectTimeout = 3 * time.Second
	defaultReadTimeout    = 30 * time.Second
	defaultMaxIdlePerHost = 256
	defaultIdleTimeout    = 90 * time.Second
)

func newTransport(ts transportSettings) *http.Transport {
	dialer := &net.Dialer{Timeout: ts.connect, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   ts.maxIdle,
		IdleConnTimeout:       ts.idleTimeout,
		ResponseHeaderTimeout: ts.firstByte,
		TLSHandshakeTimeout:   ts.connect,
		DisableCompression:    true,
		ExpectContinueTimeout: 0,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
		TLSClientConfig:       ts.tlsConfig(),
	}
	t.TLSClientConfig.ServerName = ts.serverName
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	if ts.http2 {
		protos.SetHTTP2(true)
		if ts.h2c {
			protos.SetUnencryptedHTTP2(true)
			protos.SetHTTP1(false)
		}
	}
	t.Protocols = protos
	return t
}
