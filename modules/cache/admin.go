package cache

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
)

// purger is the generation-wide record of every store, method group and listener port the
// cached routes use, so DELETE /cache/purge can find a URL wherever it is stored. It lives in
// GlobalContext.Memo and serves the Admin API endpoint once for all sites.
type purger struct {
	mu     sync.Mutex
	stores []Store
	labels []string
	groups []string         // "GET" and any other cacheable methods
	ports  map[string][]int // scheme → listener ports
	seen   map[Store]struct{}
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.AdminProvider = (*purger)(nil)
)

func aggregator(ctx *core.SiteContext) *purger {
	return core.MemoOf(ctx.Global, "cache.purger", func() *purger {
		return &purger{groups: []string{http.MethodGet}, ports: map[string][]int{}, seen: map[Store]struct{}{}}
	})
}

func (p *purger) add(c *Cache, scheme string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[c.store]; !ok {
		p.seen[c.store] = struct{}{}
		p.stores = append(p.stores, c.store)
		p.labels = append(p.labels, c.storeLabel)
	}
	for _, m := range c.methods {
		if !slices.Contains(p.groups, m) {
			p.groups = append(p.groups, m)
		}
	}
	if !slices.Contains(p.ports[scheme], port) {
		p.ports[scheme] = append(p.ports[scheme], port)
	}
}

// AdminEndpoints implements core.AdminProvider.
func (p *purger) AdminEndpoints() []core.AdminEndpoint {
	return []core.AdminEndpoint{{Method: http.MethodDelete, Path: "/cache/purge", Handler: http.HandlerFunc(p.servePurge)}}
}

// purgeKeys lists the primary keys a URL may be stored under: every method group, and every
// listener port of its scheme (plus the URL's own port), since the Admin API caller names
// the public URL, not the listener.
func (p *purger) purgeKeys(raw string) ([]string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" {
		return nil, errBadURL
	}
	// The URL is made canonical as the core makes every request (docs/security.md), so
	// any spelling of a stored URL purges it.
	host, hostPort, err := canonical.Host(u.Host, scheme)
	if err != nil {
		return nil, errBadURL
	}
	target, _, err := canonical.Path(u.EscapedPath(), canonical.PathOptions{})
	if err != nil {
		return nil, errBadURL
	}
	if u.RawQuery != "" || u.ForceQuery {
		target += "?" + u.RawQuery
	}
	p.mu.Lock()
	ports := slices.Clone(p.ports[scheme])
	groups := slices.Clone(p.groups)
	p.mu.Unlock()
	if ps := u.Port(); ps != "" {
		if n, err := strconv.Atoi(ps); err == nil && !slices.Contains(ports, n) {
			ports = append(ports, n)
		}
	}
	if len(ports) == 0 {
		ports = []int{80}
		if scheme == "https" {
			ports = []int{443}
		}
	}
	sort.Ints(ports)
	var keys []string
	for _, g := range groups {
		for _, port := range ports {
			keys = append(keys, Key(g, scheme, canonical.Authority(host, hostPort), port, target))
		}
	}
	return keys, nil
}

type purgeError string

func (e purgeError) Error() string { return string(e) }

const errBadURL = purgeError("url must be an absolute http:// or https:// URL")

// Purge removes every stored variant of url from every store and reports whether anything
// was removed. Stores that fail are reported in the error; the others are still purged.
func (p *purger) Purge(ctx context.Context, raw string) (bool, []string, error) {
	keys, err := p.purgeKeys(raw)
	if err != nil {
		return false, nil, err
	}
	p.mu.Lock()
	stores, labels := slices.Clone(p.stores), slices.Clone(p.labels)
	p.mu.Unlock()
	purged := false
	var failed []string
	for i, s := range stores {
		for _, k := range keys {
			ok, err := s.Purge(ctx, k)
			if err != nil {
				failed = append(failed, labels[i]+": "+err.Error())
				break
			}
			purged = purged || ok
		}
	}
	return purged, failed, nil
}

func (p *purger) servePurge(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("url")
	if raw == "" {
		core.AdminError(w, http.StatusBadRequest, "missing url query parameter")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	purged, failed, err := p.Purge(ctx, raw)
	if err != nil {
		core.AdminJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "message": err.Error(), "url": raw})
		return
	}
	if len(failed) > 0 {
		core.AdminJSON(w, http.StatusBadGateway, map[string]any{"status": "error", "message": "purging failed in " + strconv.Itoa(len(failed)) + " store(s)",
			"purged": purged, "url": raw, "errors": failed})
		return
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "purged": purged, "url": raw})
}
