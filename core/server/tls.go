package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// TLSConfig is a site's `tls` block. The acme sub-block belongs to the acme module.
type TLSConfig struct {
	// Cert is the PEM certificate chain file (cold).
	Cert string `json:"cert"`
	// Key is the PEM private key file (cold).
	Key string `json:"key"`
	// CA is a CA bundle (documented by the original as for upstream verification).
	CA string `json:"ca"`
	// HTTPRedirectPort starts a plain-HTTP listener that redirects to HTTPS.
	HTTPRedirectPort uint16 `json:"httpRedirectPort"`
	// Versions lists allowed protocol versions ("TLSv1.2", "TLSv1.3"). The original rejects
	// any value; Conduit enforces it.
	Versions []string `json:"versions"`
	// Ciphers lists allowed TLS 1.2 cipher suites by IANA name. TLS 1.3 suites are fixed.
	Ciphers []string `json:"ciphers"`
	// ClientAuth enables mutual TLS.
	ClientAuth *ClientAuthConfig `json:"clientAuth"`
	// ACME is owned by the acme module.
	ACME config.Node `json:"acme"`

	minVersion, maxVersion uint16
	cipherIDs              []uint16
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
	}
	if len(t.Ciphers) > 0 {
		byName := map[string]uint16{}
		for _, cs := range tls.CipherSuites() {
			byName[cs.Name] = cs.ID
		}
		for i, c := range t.Ciphers {
			id, ok := byName[strings.ToUpper(c)]
			if !ok {
				if strings.HasPrefix(strings.ToUpper(c), "TLS_AES_") || strings.HasPrefix(strings.ToUpper(c), "TLS_CHACHA20_") {
					continue // TLS 1.3 suites are always on in Go.
				}
				d.Errorf(config.Index(config.Join(path, "ciphers"), i), "unknown or insecure cipher suite %q", c)
				continue
			}
			t.cipherIDs = append(t.cipherIDs, id)
		}
	}
}

// loadCertificate reads the site's certificate pair.
func (t *TLSConfig) loadCertificate() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("load tls.cert %s / tls.key %s: %w", t.Cert, t.Key, err)
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

// certificate returns the certificate for a handshake on port: the site whose host matches
// the SNI name, else the first TLS site on the port with a certificate.
func (g *Generation) certificate(port int, sni string) (*tls.Certificate, error) {
	pt := g.ports[port]
	if pt == nil {
		return nil, fmt.Errorf("no site on port %d", port)
	}
	var fallback *tls.Certificate
	for _, s := range pt.sites {
		if s.cert == nil {
			continue
		}
		if fallback == nil {
			fallback = s.cert
		}
		if sni != "" && strings.EqualFold(s.Info.Host, sni) {
			return s.cert, nil
		}
	}
	if fallback == nil {
		return nil, fmt.Errorf("no certificate for port %d", port)
	}
	return fallback, nil
}
