// Package acme obtains and renews a site's certificates from an ACME CA (Let's Encrypt by
// default) through certmagic. It owns the `tls.acme` block.
//
// The core knows nothing of ACME: the site instance implements core.CertificateSource
// (handshakes ask it for the certificate, so a renewal reaches new handshakes at once while
// established connections keep theirs), core.ALPNProvider (adds "acme-tls/1" for the
// TLS-ALPN-01 challenge on the site's own port) and core.HTTPChallengeHandler (HTTP-01
// challenges on the site's httpRedirectPort listener).
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// ExtraRootEnv names a PEM file of CA certificates the ACME client trusts in addition to the
// system roots (for a private or test CA such as Pebble).
const ExtraRootEnv = "CONDUIT_ACME_EXTRA_ROOT"

// Config is `tls.acme`.
type Config struct {
	// Email is the ACME account's contact address (required).
	Email string `json:"email" cfg:"required"`
	// Storage is the directory for account keys and certificates. Default:
	// $XDG_DATA_HOME/conduit/acme (~/.local/share/conduit/acme).
	Storage string `json:"storage"`
	// Challenge restricts validation to "http-01" or "tls-alpn-01"; empty allows both.
	Challenge string `json:"challenge" enum:"|http-01|tls-alpn-01" enumcase:"fold"`
	// Directory is the ACME directory URL. Default: Let's Encrypt production.
	Directory string `json:"directory"`
	// OnDemand lists host patterns ("shop.example.com", "*.example.com") for which a
	// certificate is obtained during the first handshake that asks for it. Only names on
	// the list are ever requested from the CA.
	OnDemand []string `json:"onDemand"`
}

func init() {
	core.Register(core.Module{
		ID:          "tls.acme",
		Feature:     "acme",
		Description: "automatic certificates from an ACME CA (HTTP-01, TLS-ALPN-01, on-demand with an allow-list)",
		// tls.acme is not a top-level site key: the site func runs for every site and
		// provisions only those whose tls block has acme. Claiming the key tells the core the
		// feature is compiled in.
		SiteKeys:    []string{"tls.acme"},
		AlwaysOn:    true,
		SiteRoles:   core.RoleCertificates | core.RoleALPN | core.RoleHTTPChallenge | core.RoleStarter | core.RoleStopper,
		Site:        provision,
		ConfigTypes: map[string]any{"tls.acme": schemaConfig{}},
	})
}

// Instance is one site's ACME manager.
type Instance struct {
	magic   *certmagic.Config
	cache   *certmagic.Cache
	issuer  *certmagic.ACMEIssuer
	domains []string
	alpn    bool
}

var (
	_ core.CertificateSource    = (*Instance)(nil)
	_ core.ALPNProvider         = (*Instance)(nil)
	_ core.HTTPChallengeHandler = (*Instance)(nil)
	_ core.Starter              = (*Instance)(nil)
	_ core.Stopper              = (*Instance)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	rawTLS, ok := ctx.Section("tls")
	if !ok {
		return nil
	}
	tlsMap, ok := rawTLS.(map[string]config.Node)
	if !ok || tlsMap["acme"] == nil {
		return nil
	}
	path := ctx.Path("tls.acme")
	var c Config
	config.Decode(tlsMap["acme"], path, &c, ctx.Diag)
	var redirectPort uint16
	if n, ok := tlsMap["httpRedirectPort"]; ok {
		config.Decode(n, ctx.Path("tls.httpRedirectPort"), &redirectPort, &config.Diagnostics{})
	}
	inst := build(ctx, path, c, redirectPort)
	if inst == nil {
		return nil
	}
	return inst
}

func build(ctx *core.SiteContext, path string, c Config, redirectPort uint16) *Instance {
	bad := false
	fail := func(p, format string, args ...any) {
		ctx.Errorf(p, format, args...)
		bad = true
	}
	if c.Email != "" && !strings.Contains(c.Email, "@") {
		fail(config.Join(path, "email"), "must be an email address")
	}
	httpOK, alpnOK := true, true
	switch strings.ToLower(c.Challenge) {
	case "":
	case "http-01":
		alpnOK = false
	case "tls-alpn-01":
		httpOK = false
	case "dns-01":
		fail(config.Join(path, "challenge"), "dns-01 is not supported (use http-01 or tls-alpn-01)")
	default:
		fail(config.Join(path, "challenge"), "must be http-01 or tls-alpn-01, got %q", c.Challenge)
	}
	if c.Directory != "" && !strings.HasPrefix(c.Directory, "https://") {
		fail(config.Join(path, "directory"), "must be an https:// ACME directory URL")
	}
	allow, err := compileAllowList(c.OnDemand)
	if err != nil {
		fail(config.Join(path, "onDemand"), "%v", err)
	}
	host := ctx.Site.Host
	var domains []string
	switch {
	case host == "" && len(c.OnDemand) == 0:
		fail(path, "needs the site's host (a DNS name) or an onDemand list")
	case host == "":
	case net.ParseIP(strings.Trim(host, "[]")) != nil:
		fail(config.Join(ctx.Site.Path, "host"), "an ACME certificate needs a DNS name, not an IP address")
	case strings.Contains(host, "*"):
		fail(config.Join(ctx.Site.Path, "host"), "wildcard names need the DNS-01 challenge, which is not supported")
	default:
		domains = []string{host}
	}
	roots, err := trustedRoots()
	if err != nil {
		fail(path, "%v", err)
	}
	if bad {
		return nil
	}
	storage := c.Storage
	if storage == "" {
		storage = defaultStorage()
	}
	log := zapToSlog(ctx.Logger.With("module", "acme"))
	inst := &Instance{domains: domains, alpn: alpnOK}
	inst.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return inst.magic, nil },
		Logger:           log,
	})
	magic := certmagic.New(inst.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storage},
		Logger:  log,
	})
	if len(c.OnDemand) > 0 {
		magic.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: func(_ context.Context, name string) error {
			if allow.match(name) {
				return nil
			}
			return fmt.Errorf("%s is not on tls.acme.onDemand", name)
		}}
	}
	directory := c.Directory
	if directory == "" {
		directory = certmagic.LetsEncryptProductionCA
	}
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      directory,
		TestCA:                  directory, // never fall back to another CA
		Email:                   c.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !httpOK,
		DisableTLSALPNChallenge: !alpnOK,
		// The solvers bind these ports only when nothing listens there; Conduit's own
		// listeners (the site's port, its httpRedirectPort) answer the challenges otherwise.
		AltTLSALPNPort: ctx.Site.Port,
		AltHTTPPort:    int(redirectPort),
		TrustedRoots:   roots,
		Logger:         log,
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	inst.magic, inst.issuer = magic, issuer
	return inst
}

// GetCertificate implements core.CertificateSource: the managed certificate for the SNI
// name, a TLS-ALPN-01 challenge certificate, or an on-demand one for an allowed name.
func (i *Instance) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return i.magic.GetCertificate(hello)
}

// ALPNProtocols implements core.ALPNProvider.
func (i *Instance) ALPNProtocols() []string {
	if i.alpn {
		return []string{"acme-tls/1"}
	}
	return nil
}

// HandleHTTPChallenge implements core.HTTPChallengeHandler.
func (i *Instance) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return i.issuer.HandleHTTPChallenge(w, r)
}

// Start loads the site's certificate from storage or obtains it in the background; renewals
// follow on their own (certmagic checks every 10 minutes and renews in the last third of the
// certificate's lifetime).
func (i *Instance) Start(ctx context.Context) error {
	if len(i.domains) == 0 {
		return nil
	}
	if err := i.magic.ManageAsync(ctx, i.domains); err != nil {
		return fmt.Errorf("acme: manage %v: %w", i.domains, err)
	}
	return nil
}

// Stop ends the certificate maintenance of this generation (the next one has its own).
func (i *Instance) Stop(context.Context) error {
	i.cache.Stop()
	return nil
}

// trustedRoots returns the system roots plus the certificates of $CONDUIT_ACME_EXTRA_ROOT,
// or nil (the system roots) when it is unset.
func trustedRoots() (*x509.CertPool, error) {
	p := os.Getenv(ExtraRootEnv)
	if p == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ExtraRootEnv, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", ExtraRootEnv, p)
	}
	return pool, nil
}

func defaultStorage() string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".local", "share")
		} else {
			base = "."
		}
	}
	return filepath.Join(base, "conduit", "acme")
}

// allowList matches host names against onDemand patterns: an exact name, or "*.suffix"
// matching exactly one more label.
type allowList struct {
	exact    map[string]bool
	suffixes []string // ".example.com"
}

func compileAllowList(patterns []string) (*allowList, error) {
	a := &allowList{exact: map[string]bool{}}
	for i, p := range patterns {
		p = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(p), "."))
		switch {
		case p == "" || p == "*":
			return nil, fmt.Errorf("entry %d: %q would allow any name; list the names or *.domain patterns", i, p)
		case strings.HasPrefix(p, "*."):
			rest := p[1:]
			if strings.Contains(rest[1:], "*") || !validName(rest[1:]) {
				return nil, fmt.Errorf("entry %d: %q is not a valid *.domain pattern", i, p)
			}
			a.suffixes = append(a.suffixes, rest)
		default:
			if !validName(p) {
				return nil, fmt.Errorf("entry %d: %q is not a valid DNS name", i, p)
			}
			a.exact[p] = true
		}
	}
	return a, nil
}

func (a *allowList) match(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if a.exact[name] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(name, s) {
			label := name[:len(name)-len(s)]
			if label != "" && !strings.Contains(label, ".") && validName(label) {
				return true
			}
		}
	}
	return false
}

// validName reports whether s is a DNS name of letters, digits, hyphens and dots.
func validName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
