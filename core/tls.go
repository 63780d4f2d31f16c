package core

import (
	"crypto/tls"
	"net/http"
)

// CertificateSource supplies a site's certificates at handshake time instead of (or before)
// tls.cert/tls.key. A module's site instance implements it: the acme module's does, so the
// core stays free of any ACME library. GetCertificate is called for every handshake whose
// SNI name selects the site (and, for a catch-all site, for names no other site claims); it
// may return a certificate obtained or renewed at any time, which is how renewals reach new
// handshakes without a restart.
type CertificateSource interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ALPNProvider is implemented by a CertificateSource that must be able to negotiate extra
// ALPN protocols, such as "acme-tls/1" for the ACME TLS-ALPN-01 challenge.
type ALPNProvider interface {
	ALPNProtocols() []string
}

// HTTPChallengeHandler is implemented by a site instance that answers requests on the plain
// httpRedirectPort listener before the redirect, such as ACME HTTP-01 challenges. It
// reports whether it answered.
type HTTPChallengeHandler interface {
	HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool
}
