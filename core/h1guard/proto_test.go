package h1guard

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// upgradeHandler answers 101 on /ws and then echoes what the client sends, read through
// the hijacked (guarded) connection. With explicit, it calls Passthrough first.
func upgradeHandler(t *testing.T, explicit bool, rec *recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Method+" "+r.RequestURI)
		rec.mu.Unlock()
		if r.URL.Path != "/ws" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if explicit && !Passthrough(c) {
			t.Error("Passthrough: not a guarded connection")
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		buf := make([]byte, 256)
		n, err := brw.Read(buf)
		if err != nil {
			t.Errorf("tunnel read: %v", err)
			return
		}
		_, _ = c.Write(buf[:n])
	})
}

func tunnel(t *testing.T, addr, payload string) (status int, echo string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: test\r\nConnection: keep-alive, Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, payload)
	b, _ := io.ReadAll(br)
	return resp.StatusCode, string(b)
}

func TestUpgradeAutoPassthrough(t *testing.T) {
	rec := &recorder{}
	addr := startServer(t, upgradeHandler(t, false, rec), Options{})
	frame := "\x81\x05hello" // a WebSocket text frame: the first byte is not a token byte
	st, echo := tunnel(t, addr, frame)
	if st != 101 || echo != frame {
		t.Fatalf("status %d echo %q", st, echo)
	}
}

func TestUpgradeExplicitPassthrough(t *testing.T) {
	rec := &recorder{}
	addr := startServer(t, upgradeHandler(t, true, rec), Options{})
	// Tunnel bytes that would be refused as HTTP.
	payload := "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	st, echo := tunnel(t, addr, payload)
	if st != 101 || echo != payload {
		t.Fatalf("status %d echo %q", st, echo)
	}
}

// TestUpgradeNotHonoured: a request asks for an upgrade the server does not perform; the
// non-HTTP bytes that follow go to net/http, which refuses them, and an HTTP request that
// follows instead is still validated.
func TestUpgradeNotHonoured(t *testing.T) {
	rec := &recorder{}
	addr := startServer(t, rec, Options{})
	up := "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	got, closed := exchange(t, addr, []byte(up+"\x81GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"), 2, true)
	if strings.Join(got, ",") != "200,400" || !closed { // net/http's own 400
		t.Fatalf("got %v closed=%v", got, closed)
	}
	got, closed = exchange(t, addr, []byte(up+"GET /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx"), 2, true)
	if strings.Join(got, ",") != "200" || !closed {
		t.Fatalf("got %v closed=%v", got, closed)
	}
	for _, r := range rec.requests() {
		if strings.Contains(r, "smuggled") {
			t.Fatalf("handler saw %q", r)
		}
	}
}

func TestPassthroughOther(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Passthrough(a) {
		t.Fatal("plain pipe reported as guarded")
	}
	if Passthrough(nil) {
		t.Fatal("nil reported as guarded")
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLS wraps the tls.Listener: HTTP/1.1 requests are validated and keep Request.TLS,
// HTTP/2 (ALPN h2) is served by net/http untouched.
func TestTLS(t *testing.T) {
	cert := selfSigned(t)
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		proto string
		tls   bool
		uri   string
	}
	got := make(chan seen, 10)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{
		Protocols: protos,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- seen{r.Proto, r.TLS != nil, r.RequestURI}
			_, _ = io.WriteString(w, "ok")
		}),
	}
	ln := Wrap(tls.NewListener(raw, tc), Options{})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := raw.Addr().String()

	for _, h2 := range []bool{false, true} {
		cp := new(http.Protocols)
		if h2 {
			cp.SetHTTP2(true)
		} else {
			cp.SetHTTP1(true)
		}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			Protocols:       cp,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		resp, err := client.Get("https://" + addr + "/x")
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		s := <-got
		wantProto := "HTTP/1.1"
		if h2 {
			wantProto = "HTTP/2.0"
		}
		if s.proto != wantProto || !s.tls {
			t.Fatalf("h2=%v: handler saw %+v", h2, s)
		}
		client.CloseIdleConnections()
	}

	// A smuggling attempt over TLS is refused.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case s := <-got:
		t.Fatalf("handler saw %+v", s)
	case <-time.After(50 * time.Millisecond):
	}

	// Plain HTTP to the TLS port still gets net/http's own answer.
	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(pc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	b, _ := io.ReadAll(pc)
	if !strings.Contains(string(b), "400 Bad Request") {
		t.Fatalf("plain HTTP to TLS port: %q", b)
	}
}

// TestGuardBelowTLS: wrapped under TLS (the guard sees ciphertext), the guard steps aside
// instead of breaking the handshake.
func TestGuardBelowTLS(t *testing.T) {
	cert := selfSigned(t)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(Wrap(raw, Options{}), &tls.Config{Certificates: []tls.Certificate{cert}})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get("https://" + raw.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestH2CPriorKnowledge: the HTTP/2 preface switches the guard to pass-through.
func TestH2CPriorKnowledge(t *testing.T) {
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Protocols: protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})}
	go func() { _ = srv.Serve(Wrap(raw, Options{})) }()
	defer srv.Close()
	cp := new(http.Protocols)
	cp.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: cp}}
	resp, err := client.Get("http://" + raw.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Fatalf("proto %q", b)
	}
}

func TestListenerClose(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Options{})
	errc := make(chan error, 1)
	go func() { _, err := ln.Accept(); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	_ = ln.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("second Accept succeeded")
	}
}
