package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/server"
)

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	g := a.opts.Server.Current()
	out := map[string]any{
		"status": "running", "inflight": a.opts.Server.Inflight(), "retry_inflight": 0,
		"sites": len(g.Sites), "configured_upstreams": 0, "healthy_upstreams": 0,
		"total_probed_upstreams": 0, "config_path": g.ConfigPath,
		"version": a.opts.Version, "pid": os.Getpid(),
	}
	for _, inst := range g.Instances() {
		sp, ok := inst.(core.StatusProvider)
		if !ok {
			continue
		}
		for k, v := range sp.AdminStatus() {
			if n, ok := toFloat(v); ok {
				if prev, ok := toFloat(out[k]); ok {
					out[k] = prev + n
					continue
				}
			}
			out[k] = v
		}
	}
	core.AdminJSON(w, http.StatusOK, out)
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	d, err := a.opts.Server.Reload(ctx)
	if err != nil {
		core.AdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := map[string]any{"status": "ok", "message": "config reloaded"}
	if d != nil {
		var warns []string
		for _, wd := range d.Warnings() {
			warns = append(warns, wd.String())
		}
		if len(warns) > 0 {
			out["warnings"] = warns
		}
	}
	core.AdminJSON(w, http.StatusOK, out)
}

func (a *API) shutdown(w http.ResponseWriter, r *http.Request) {
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "shutting_down"})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if a.opts.Shutdown != nil {
		go a.opts.Shutdown()
	}
}

// maxPEMBytes bounds a certificate upload.
const maxPEMBytes = 1 << 20

// certsReload validates a new certificate pair, writes it atomically over the first TLS
// site's cert and key files (keeping their modes) and reloads, so new handshakes use it
// while established connections continue.
func (a *API) certsReload(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Cert string `json:"cert"`
		Key  string `json:"key"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPEMBytes))
	if err := dec.Decode(&body); err != nil || body.Cert == "" || body.Key == "" {
		core.AdminError(w, http.StatusBadRequest, "body must be {\"cert\": PEM chain, \"key\": PEM}")
		return
	}
	if _, err := tls.X509KeyPair([]byte(body.Cert), []byte(body.Key)); err != nil {
		core.AdminError(w, http.StatusBadRequest, "certificate and key do not form a valid pair: "+err.Error())
		return
	}
	g := a.opts.Server.Current()
	site := firstCertSite(g)
	if site == nil {
		core.AdminError(w, http.StatusBadRequest, "no site has tls.cert and tls.key")
		return
	}
	if err := core.WriteFileAtomic(site.TLS.Cert, []byte(body.Cert), 0o600); err != nil {
		core.AdminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := core.WriteFileAtomic(site.TLS.Key, []byte(body.Key), 0o600); err != nil {
		core.AdminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	note := "new handshakes use the new certificate; established connections continue"
	if _, err := a.opts.Server.Reload(r.Context()); err != nil {
		note = "files written, but the reload failed (the running config keeps the old certificate): " + err.Error()
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "cert_path": site.TLS.Cert, "key_path": site.TLS.Key, "note": note})
}

func firstCertSite(g *server.Generation) *server.Site {
	for _, s := range g.Sites {
		if s.TLS != nil && s.TLS.Cert != "" && s.TLS.Key != "" {
			return s
		}
	}
	return nil
}
