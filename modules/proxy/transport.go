package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"
)

// transportSettings are everything that makes two routes' upstream connections
// interchangeable; routes with equal settings share one keep-alive pool, and the pool
// survives reloads (it lives in the server's shared store).
type transportSettings struct {
	connect     time.Duration
	send        time.Duration // timeout.sendMs: writing the request; 0 = no limit
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
	return fmt.Sprintf("proxy.transport|%v|%v|%v|%d|%v|%v|%v|%v|%s|%s", ts.connect, ts.send, ts.firstByte, ts.maxIdle, ts.idleTimeout, ts.http2, ts.h2c, ts.verify, ts.serverName, ts.rootsID)
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
	if ts.http2 && ts.send > 0 {
		// HTTP/2 multiplexes requests on one connection, so sendMs bounds how long a frame
		// may wait to be written instead (the connection closes when it is exceeded).
		t.HTTP2 = &http.HTTP2Config{WriteByteTimeout: ts.send}
	}
	return t
}

// withSendDeadline bounds writing a request on net/http's Transport (timeout.sendMs): the
// connection the request gets has a write deadline send from now until the request, body
// included, is written. An HTTP/2 connection is left alone (its frames are bounded by
// HTTP2Config.WriteByteTimeout). GotConn runs before the Transport hands the request to
// its writer goroutine, which calls WroteRequest, so conn needs no lock.
func withSendDeadline(ctx context.Context, send time.Duration) context.Context {
	var conn net.Conn
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if tc, ok := info.Conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
				return
			}
			conn = info.Conn
			_ = conn.SetWriteDeadline(time.Now().Add(send))
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if conn != nil {
				_ = conn.SetWriteDeadline(time.Time{}) // the connection may serve other requests
			}
		},
	})
}
