package server

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// TLSConfig is a site's `tls` block. The acme sub-block belongs to the acme module.
type TLSConfig struct {
	// Cert is the PEM certificate chain file. A changed file is picked up without a restart.
	Cert string `json:"cert"`
	// Key is the PEM private key file. A changed file is picked up without a restart.
	Key string `json:"key"`
	// CA is a PEM bundle of CA certificates trusted, in addition to the system roots, for
	// the site's https:// upstreams (docs/tls.md).
	CA string `json:"ca"`
	// HTTPRedirectPort starts a plain-HTTP listener that redirects to HTTPS (cold) and answers
	// ACME HTTP-01 challenges.
	HTTPRedirectPort uint16 `json:"httpRedirectPort"`
	// Versions lists allowed protocol versions ("TLSv1.2", "TLSv1.3"); Conduit enforces it
	// (docs/tls.md; how this differs from the original: docs/compatibility.md).
	Versions []string `json:"versions"`
	// Ciphers lists allowed TLS 1.2 cipher suites by IANA name. TLS 1.3 suites are fixed.
	Ciphers []string `json:"ciphers"`
	// ClientAuth enables mutual TLS.
	ClientAuth *ClientAuthConfig `json:"clientAuth"`
	// ACME is owned by the acme module.
	ACME config.Node `json:"acme"`

	minVersion, maxVersion uint16
	cipherIDs              []uint16
	clientPool             *x509.CertPool
	upstreamRoots          *x509.CertPool
	upstreamRootsID        string
	live                   *certFile

	// The handshake configuration of the listener, built once per generation (see
	// handshakeConfig) from the port's first TLS site.
	hsOnce sync.Once
	hs     *tls.Config
	// The site's certificate source (a module instance), found once per generation.
	srcOnce sync.Once
	src     core.CertificateSource
}

// ClientAuthConfig is tls.clientAuth.
type ClientAuthConfig struct {
	// CA is the PEM file of the CA that signs client certificates.
	CA string `json:"ca" cfg:"required"`
	// Optional asks for a certificate without requiring one.
	Optional bool `json:"optional"`
}

func (t *TLSConfig) validate(path string, d *config.Diagnostics) {
	switch {
	case t.Cert != "" && t.Key == "":
		d.Errorf(config.Join(path, "key"), "is required when tls.cert is set")
	case t.Key != "" && t.Cert == "":
		d.Errorf(config.Join(path, "cert"), "is required when tls.key is set")
	case t.Cert == "" && t.ACME == nil:
		d.Errorf(path, "needs cert and key, or acme")
	}
	t.minVersion, t.maxVersion = tls.VersionTLS12, tls.VersionTLS13
	if len(t.Versions) > 0 {
		t.minVersion, t.maxVersion = 0, 0
		for i, v := range t.Versions {
			var id uint16
			switch strings.ToUpper(strings.ReplaceAll(strings.ReplaceAll(v, " ", ""), "_", ".")) {
			case "TLSV1.2", "TLS1.2", "1.2":
				id = tls.VersionTLS12
			case "TLSV1.3", "TLS1.3", "1.3":
				id = tls.VersionTLS13
			default:
				d.Errorf(config.Index(config.Join(path, "versions"), i), "unsupported TLS version %q (use \"TLSv1.2\" or \"TLSv1.3\")", v)
				continue
			}
			if t.minVersion == 0 || id < t.minVersion {
				t.minVersion = id
			}
			if id > t.maxVersion {
				t.maxVersion = id
			}
		}
		if t.minVersion == 0 {
			t.minVersion, t.maxVersion = tls.VersionTLS12, tls.VersionTLS13
		}
	}
	if len(t.Ciphers) > 0 {
		byName := map[string]uint16{}
		for _, cs := range tls.CipherSuites() {
			byName[cs.Name] = cs.ID
		}
		tls13Only := 0
		for i, c := range t.Ciphers {
			id, ok := byName[strings.ToUpper(c)]
			if !ok {
				if strings.HasPrefix(strings.ToUpper(c), "TLS_AES_") || strings.HasPrefix(strings.ToUpper(c), "TLS_CHACHA20_") {
					tls13Only++
					continue // TLS 1.3 suites are always on in Go.
				}
				d.Errorf(config.Index(config.Join(path, "ciphers"), i), "unknown or insecure cipher suite %q", c)
				continue
			}
			t.cipherIDs = append(t.cipherIDs, id)
		}
		if len(t.cipherIDs) == 0 && tls13Only > 0 && t.minVersion <= tls.VersionTLS12 {
			d.Warnf(config.Join(path, "ciphers"), "lists only TLS 1.3 suites, which cannot be restricted; TLS 1.2 keeps Go's default suites")
		}
	}
	if t.CA != "" {
		pool, id, err := upstreamRoots(t.CA)
		if err != nil {
			d.Errorf(config.Join(path, "ca"), "%v", err)
		}
		t.upstreamRoots, t.upstreamRootsID = pool, id
	}
	if t.ClientAuth != nil && t.ClientAuth.CA != "" {
		pool, err := t.clientCAs()
		if err != nil {
			d.Errorf(config.Join(path, "clientAuth.ca"), "%v", err)
		}
		t.clientPool = pool
	}
}

// loadCertificate reads the site's certificate pair and starts watching the files: a
// handshake that finds them changed (at most one check a second) loads the new pair.
func (t *TLSConfig) loadCertificate() (*tls.Certificate, error) {
	cert, err := loadPair(t.Cert, t.Key)
	if err != nil {
		return nil, err
	}
	t.live = newCertFile(t.Cert, t.Key, cert)
	return cert, nil
}

func loadPair(certPath, keyPath string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("load tls.cert %s / tls.key %s: %w", certPath, keyPath, err)
	}
	if len(cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			cert.Leaf = leaf
		}
	}
	return &cert, nil
}

// clientCAs loads the clientAuth CA pool.
func (t *TLSConfig) clientCAs() (*x509.CertPool, error) {
	pem, err := os.ReadFile(t.ClientAuth.CA)
	if err != nil {
		return nil, fmt.Errorf("read tls.clientAuth.ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.clientAuth.ca %s holds no PEM certificate", t.ClientAuth.CA)
	}
	return pool, nil
}

// upstreamRoots loads tls.ca: the system roots plus every certificate of the PEM file, and
// a SHA-256 of the file that identifies the resulting pool.
func upstreamRoots(file string) (*x509.CertPool, string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("read CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // no system store on this platform: the bundle alone
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, "", fmt.Errorf("CA bundle %s holds no PEM certificate", file)
	}
	sum := sha256.Sum256(data)
	return pool, hex.EncodeToString(sum[:]), nil
}

// certRecheck is how often a handshake may stat the certificate files for a change.
const certRecheck = time.Second

// certFile is a certificate pair loaded from files and reloaded when they change. The check
// is a stat of both files, done by at most one handshake per certRecheck; a pair that does
// not load (a rotation half done: new cert, old key) keeps the previous certificate until a
// later check finds a good pair.
type certFile struct {
	certPath, keyPath string
	cur               atomic.Pointer[loadedCert]
	next              atomic.Int64 // unix nanoseconds of the next allowed check
	mu                sync.Mutex
}

type loadedCert struct {
	cert       *tls.Certificate
	certStamp  os.FileInfo
	keyStamp   os.FileInfo
	loadFailed string // the last load error for this stamp pair, logged once
}

func newCertFile(certPath, keyPath string, cert *tls.Certificate) *certFile {
	cf := &certFile{certPath: certPath, keyPath: keyPath}
	cs, _ := os.Stat(certPath)
	ks, _ := os.Stat(keyPath)
	cf.cur.Store(&loadedCert{cert: cert, certStamp: cs, keyStamp: ks})
	cf.next.Store(time.Now().Add(certRecheck).UnixNano())
	return cf
}

// get returns the current certificate, reloading the pair when the files changed.
func (cf *certFile) get() *tls.Certificate {
	cur := cf.cur.Load()
	now := time.Now().UnixNano()
	if now < cf.next.Load() || !cf.mu.TryLock() {
		return cur.cert
	}
	defer cf.mu.Unlock()
	cf.next.Store(now + int64(certRecheck))
	cs, err1 := os.Stat(cf.certPath)
	ks, err2 := os.Stat(cf.keyPath)
	if err1 != nil || err2 != nil || (sameStamp(cur.certStamp, cs) && sameStamp(cur.keyStamp, ks)) {
		return cur.cert
	}
	cert, err := loadPair(cf.certPath, cf.keyPath)
	if err != nil {
		// Remember the stamps so that the same broken pair is not re-read every second; the
		// next change of either file triggers a new attempt.
		slog.Warn("tls: changed certificate files do not load; keeping the previous certificate", "cert", cf.certPath, "err", err)
		cf.cur.Store(&loadedCert{cert: cur.cert, certStamp: cs, keyStamp: ks, loadFailed: err.Error()})
		return cur.cert
	}
	slog.Info("tls: certificate files changed; new handshakes use the new certificate", "cert", cf.certPath)
	cf.cur.Store(&loadedCert{cert: cert, certStamp: cs, keyStamp: ks})
	return cert
}

func sameStamp(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// source returns the site's core.CertificateSource, if one of its instances is one.
func (s *Site) source() core.CertificateSource {
	t := s.TLS
	t.srcOnce.Do(func() {
		for _, inst := range s.instances {
			if cs, ok := inst.(core.CertificateSource); ok {
				t.src = cs
				return
			}
		}
	})
	return t.src
}

// siteCertificate returns s's certificate for a handshake: its certificate source's answer
// when it has one and that answers, else its tls.cert/tls.key pair.
func (s *Site) siteCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if src := s.source(); src != nil {
		c, err := src.GetCertificate(hello)
		if err == nil && c != nil {
			return c, nil
		}
		if s.TLS.live == nil {
			if err == nil {
				err = errors.New("no certificate")
			}
			return nil, err
		}
	}
	if s.TLS.live == nil {
		return nil, errors.New("no certificate")
	}
	return s.TLS.live.get(), nil
}

// certificate returns the certificate for a handshake on port:
//  1. the site whose host equals the SNI name;
//  2. else a tls.cert of a site on the port whose certificate covers the name (a wildcard or
//     multi-name certificate);
//  3. else the first catch-all TLS site on the port (whose certificate source may issue on
//     demand);
//  4. else the first TLS site on the port with a certificate.
func (g *Generation) certificate(port int, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	pt := g.ports[port]
	if pt == nil {
		return nil, fmt.Errorf("no site on port %d", port)
	}
	sni := hello.ServerName
	var catchAll, first *Site
	for _, s := range pt.sites {
		if s.TLS == nil {
			continue
		}
		if sni != "" && s.Info.Host != "" && strings.EqualFold(s.Info.Host, sni) {
			return s.siteCertificate(hello)
		}
		if s.Info.Host == "" && catchAll == nil {
			catchAll = s
		}
		if first == nil && (s.TLS.live != nil || s.source() != nil) {
			first = s
		}
	}
	if sni != "" {
		for _, s := range pt.sites {
			if s.TLS == nil || s.TLS.live == nil {
				continue
			}
			if c := s.TLS.live.get(); c.Leaf != nil && c.Leaf.VerifyHostname(sni) == nil {
				return c, nil
			}
		}
	}
	if catchAll != nil {
		if c, err := catchAll.siteCertificate(hello); err == nil || first == nil || first == catchAll {
			return c, err
		}
	}
	if first == nil {
		return nil, fmt.Errorf("no certificate for port %d", port)
	}
	return first.siteCertificate(hello)
}

// tlsSite returns the first TLS site on port: its handshake settings (versions, ciphers,
// clientAuth) are the port's.
func (g *Generation) tlsSite(port int) *Site {
	pt := g.ports[port]
	if pt == nil {
		return nil
	}
	for _, s := range pt.sites {
		if s.TLS != nil {
			return s
		}
	}
	return nil
}

// handshakeConfig returns the port's handshake configuration from this generation: built once
// from the port's first TLS site, with the certificate chosen per handshake by SNI. A reload
// therefore changes the client CA, versions and ciphers for new handshakes too.
func (g *Generation) handshakeConfig(port int, h2 bool) (*tls.Config, error) {
	first := g.tlsSite(port)
	if first == nil {
		return nil, fmt.Errorf("no TLS site on port %d", port)
	}
	t := first.TLS
	t.hsOnce.Do(func() {
		tc := &tls.Config{MinVersion: t.minVersion, MaxVersion: t.maxVersion, CipherSuites: t.cipherIDs}
		switch {
		case g.ports[port].raw():
			tc.NextProtos = nil // raw connections speak no HTTP
		case h2:
			tc.NextProtos = []string{"h2", "http/1.1"}
		default:
			tc.NextProtos = []string{"http/1.1"}
		}
		for _, site := range g.ports[port].sites {
			if site.TLS == nil {
				continue
			}
			if ap, ok := site.source().(core.ALPNProvider); ok {
				for _, p := range ap.ALPNProtocols() {
					if !containsString(tc.NextProtos, p) {
						tc.NextProtos = append(tc.NextProtos, p)
					}
				}
			}
		}
		if t.ClientAuth != nil {
			tc.ClientCAs = t.clientPool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
			if t.ClientAuth.Optional {
				tc.ClientAuth = tls.VerifyClientCertIfGiven
			}
		}
		tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return g.certificate(port, hello)
		}
		t.hs = tc
	})
	return t.hs, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkTLSPorts reports TLS settings that differ between the sites of one port. The
// handshake happens before the Host header is known, so versions, ciphers and clientAuth
// are per port (the first TLS site's); a different setting on another site of the port is
// an error rather than silently ignored.
func (g *Generation) checkTLSPorts(d *config.Diagnostics) {
	for _, pt := range g.ports {
		var first *Site
		for _, s := range pt.sites {
			if s.TLS == nil {
				continue
			}
			if first == nil {
				first = s
				continue
			}
			a, b := first.TLS, s.TLS
			if a.minVersion != b.minVersion || a.maxVersion != b.maxVersion {
				d.Errorf(config.Join(s.Info.Path, "tls.versions"), "differs from %s on port %d; TLS handshake settings are per port (use another port)", siteName(first), pt.port)
			}
			if !equalIDs(a.cipherIDs, b.cipherIDs) {
				d.Errorf(config.Join(s.Info.Path, "tls.ciphers"), "differs from %s on port %d; TLS handshake settings are per port (use another port)", siteName(first), pt.port)
			}
			if (a.ClientAuth == nil) != (b.ClientAuth == nil) || (a.ClientAuth != nil && *a.ClientAuth != *b.ClientAuth) {
				d.Errorf(config.Join(s.Info.Path, "tls.clientAuth"), "differs from %s on port %d; mTLS is per port (use another port)", siteName(first), pt.port)
			}
		}
	}
}

func siteName(s *Site) string {
	if s.Info.Path == "" {
		return "the site"
	}
	return s.Info.Path
}

func equalIDs(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// redirectPorts returns the plain-HTTP redirect ports of g: every tls.httpRedirectPort that
// is not also a site's port (a plain site on that port serves it instead).
func (g *Generation) redirectPorts() []int {
	var out []int
	for _, s := range g.Sites {
		if s.TLS == nil || s.TLS.HTTPRedirectPort == 0 {
			continue
		}
		p := int(s.TLS.HTTPRedirectPort)
		if _, isSite := g.ports[p]; isSite || slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// redirector is the handler of an httpRedirectPort listener: ACME HTTP-01 challenges are
// answered, everything else is redirected to the HTTPS site that named this port (301 for GET
// and HEAD, 308 otherwise so that the method and body are kept).
type redirector struct {
	srv  *Server
	port int
}

func (rd *redirector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := rd.srv.enter(w, r)
	if g == nil {
		return
	}
	defer rd.srv.leave(g)
	host, _, ok := g.canonicalize(w, r)
	if !ok {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		for _, s := range g.Sites {
			for _, inst := range s.instances {
				if h, ok := inst.(core.HTTPChallengeHandler); ok && h.HandleHTTPChallenge(w, r) {
					return
				}
			}
		}
	}
	var target, catchAll *Site
	for _, s := range g.Sites {
		if s.TLS == nil || int(s.TLS.HTTPRedirectPort) != rd.port {
			continue
		}
		if host != "" && s.Info.Host != "" && strings.EqualFold(s.Info.Host, host) {
			target = s
			break
		}
		if s.allows(host) && host != "" && target == nil {
			target = s
		}
		if s.Info.Host == "" && catchAll == nil {
			catchAll = s
		}
	}
	if target == nil {
		target = catchAll
	}
	if host == "" && target != nil {
		host = target.Info.Host
	}
	if target == nil || host == "" || !target.allows(host) {
		badRequest(w, r, "unknown host")
		return
	}
	loc := "https://" + host
	if target.Info.Port != 443 {
		loc += ":" + strconv.Itoa(target.Info.Port)
	}
	loc += r.URL.RequestURI()
	code := http.StatusPermanentRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(code)
}
