package admin

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/server"
)

// overview is the dashboard's GET /dashboard/api/overview: the binary, the running
// generation, the last reload and each site's listener and certificate.
func (a *API) overview() any {
	s := a.opts.Server
	g := s.Current()
	now := time.Now()
	var features []string
	for _, m := range core.Modules() {
		if m.Feature != "" && !contains(features, m.Feature) {
			features = append(features, m.Feature)
		}
	}
	sort.Strings(features)
	out := map[string]any{
		"version":     a.opts.Version,
		"features":    features,
		"bundle":      bundleOf(features),
		"uptime_secs": now.Sub(s.StartedAt()).Seconds(),
		"config_path": g.ConfigPath,
		"generation":  g.Number(),
		"loaded_at":   g.ActiveSince().UTC().Format(time.RFC3339),
		"inflight":    s.Inflight(),
	}
	if lr := s.LastReload(); lr != nil {
		r := map[string]any{"at": lr.At.UTC().Format(time.RFC3339), "ok": lr.Err == "", "warnings": lr.Warnings}
		if lr.Err != "" {
			r["error"] = lr.Err
		}
		out["last_reload"] = r
	}
	sites := make([]map[string]any, 0, len(g.Sites))
	for _, site := range g.Sites {
		m := map[string]any{"label": site.Info.Label, "host": site.Info.Host, "port": site.Info.Port, "tls": site.Info.TLS}
		if site.TLS != nil && site.TLS.Cert != "" {
			m["certificate"] = certSummary(site.TLS.Cert)
		}
		sites = append(sites, m)
	}
	out["sites"] = sites
	return out
}

// certSummary reads the first certificate of a PEM file: its subject, names and expiry, or
// the error that kept it from being read.
func certSummary(path string) map[string]any {
	raw, err := os.ReadFile(path)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return map[string]any{"error": "no certificate in " + path}
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		return map[string]any{"subject": c.Subject.String(), "dns_names": c.DNSNames,
			"not_after": c.NotAfter.UTC().Format(time.RFC3339)}
	}
}

// bundleOf names the bundle whose features are exactly features (minimal, standard, full),
// or "custom" for any other set (an xbuild binary, a build with a feature left out or a
// third-party module).
func bundleOf(features []string) string {
	have := map[string]bool{}
	for _, f := range features {
		have[f] = true
	}
	for i, b := range bundleOrder {
		n := 0
		match := true
		for _, f := range core.CatalogFeatures() {
			rank := slices.Index(bundleOrder, f.Bundle)
			if rank < 0 {
				continue
			}
			if rank <= i {
				n++
				if !have[f.Name] {
					match = false
				}
			}
		}
		if match && n == len(features) {
			return b
		}
	}
	return "custom"
}

// bundleOrder lists the bundles from the smallest (each contains the previous one).
var bundleOrder = []string{"minimal", "standard", "full"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// generationToken returns the token of the current generation (ok false without one).
func generationToken(g *server.Generation) (string, bool) {
	if g == nil || g.Global.Admin == nil || g.Global.Admin.Token == nil {
		return "", false
	}
	return g.Global.Admin.Token.Reveal(), true
}
