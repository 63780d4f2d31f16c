package ipfilter

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/conduitproxy/conduit/core"
)

// MaxRuntimeEntries bounds the runtime deny list.
const MaxRuntimeEntries = 100_000

// runtimeDeny is the Admin API's deny list. It lives in core.Shared, so it survives reloads
// (not restarts), and every site's filter reads it through one atomic pointer.
type runtimeDeny struct {
	mu  sync.Mutex
	set map[netip.Prefix]struct{}
	cur atomic.Pointer[prefixList]
}

func runtimeList(s core.Shared) *runtimeDeny {
	return core.SharedOf(s, "ipfilter.runtimeDeny", func() *runtimeDeny {
		return &runtimeDeny{set: map[netip.Prefix]struct{}{}}
	})
}

// add inserts p; it reports false when the list is full.
func (r *runtimeDeny) add(p netip.Prefix) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[p]; ok {
		return true
	}
	if len(r.set) >= MaxRuntimeEntries {
		return false
	}
	r.set[p] = struct{}{}
	r.publish()
	return true
}

func (r *runtimeDeny) remove(p netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, p)
	r.publish()
}

// publish swaps in an immutable copy; the caller holds mu.
func (r *runtimeDeny) publish() {
	if len(r.set) == 0 {
		r.cur.Store(nil)
		return
	}
	l := &prefixList{}
	for _, p := range r.sorted() {
		l.add(p)
	}
	r.cur.Store(l)
}

func (r *runtimeDeny) sorted() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(r.set))
	for p := range r.set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
			return c < 0
		}
		return out[i].Bits() < out[j].Bits()
	})
	return out
}

func (r *runtimeDeny) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, p := range r.sorted() {
		out = append(out, p.String())
	}
	return out
}

// adminAPI serves POST/DELETE /ip-deny and GET /ip-deny, which reads the list back
// (docs/rate-limiting.md, "Admin API").
type adminAPI struct {
	rt *runtimeDeny
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.AdminProvider = (*adminAPI)(nil)
)

// AdminEndpoints implements core.AdminProvider.
func (a *adminAPI) AdminEndpoints() []core.AdminEndpoint {
	return []core.AdminEndpoint{
		{Method: http.MethodPost, Path: "/ip-deny", Handler: http.HandlerFunc(a.serveAdd)},
		{Method: http.MethodDelete, Path: "/ip-deny", Handler: http.HandlerFunc(a.serveRemove)},
		{Method: http.MethodGet, Path: "/ip-deny", Handler: http.HandlerFunc(a.serveList)},
	}
}

type cidrBody struct {
	CIDR string `json:"cidr"`
}

func (a *adminAPI) readCIDR(w http.ResponseWriter, r *http.Request) (netip.Prefix, bool) {
	var body cidrBody
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	if err := dec.Decode(&body); err != nil {
		core.AdminError(w, http.StatusBadRequest, "body must be {\"cidr\": \"<IP or CIDR>\"}")
		return netip.Prefix{}, false
	}
	p, _, err := ParseCIDR(body.CIDR)
	if err != nil {
		core.AdminError(w, http.StatusBadRequest, "cidr: "+err.Error())
		return netip.Prefix{}, false
	}
	return p, true
}

func (a *adminAPI) serveAdd(w http.ResponseWriter, r *http.Request) {
	p, ok := a.readCIDR(w, r)
	if !ok {
		return
	}
	if !a.rt.add(p) {
		core.AdminError(w, http.StatusInsufficientStorage, "the runtime deny list is full")
		return
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "action": "added", "cidr": p.String()})
}

func (a *adminAPI) serveRemove(w http.ResponseWriter, r *http.Request) {
	p, ok := a.readCIDR(w, r)
	if !ok {
		return
	}
	a.rt.remove(p)
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "action": "removed", "cidr": p.String()})
}

func (a *adminAPI) serveList(w http.ResponseWriter, r *http.Request) {
	core.AdminJSON(w, http.StatusOK, map[string]any{"cidrs": a.rt.list()})
}
