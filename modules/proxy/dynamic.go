package proxy

import (
	"errors"
	"fmt"
	"net/url"
)

// addTarget adds an upstream at run time (Admin API), or updates its weight when present.
// The new set replaces the old one atomically; a reload drops run-time changes.
func (rt *route) addTarget(raw string, weight uint32) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("target must be an absolute http:// or https:// URL")
	}
	rt.pool.mu.Lock()
	defer rt.pool.mu.Unlock()
	if rt.reweightLocked(raw, weight) {
		return nil
	}
	cur := rt.pool.set.Load()
	tmpl := cur.ups
	if len(tmpl) == 0 {
		return fmt.Errorf("route has no upstream to copy transport settings from")
	}
	st := rt.site.registry.state(raw)
	up := &upstream{url: u, label: raw, transport: tmpl[0].transport, send: tmpl[0].send, st: st, active: rt.site.registry.activeGauge(raw)}
	if t := tmpl[0].h1; t != nil && (u.Scheme == "http" || u.Scheme == "https") {
		up.h1 = t.client.poolFor(u) // no h1 pool when the settings keep everything on the transport (HTTP/2)
	}
	up.weight.Store(weight)
	ups := append(append([]*upstream(nil), cur.ups...), up)
	rt.pool.set.Store(newUpstreamSet(ups))
	return nil
}

// Why removeTarget refused; the Admin API answers 404 and 409 for them.
var (
	errNoTarget   = errors.New("no such target on the route")
	errLastTarget = errors.New("the last target of a route cannot be removed")
)

// removeTarget removes an upstream at run time. It returns errNoTarget when the route has
// no such upstream and errLastTarget for its last one.
func (rt *route) removeTarget(raw string) error {
	rt.pool.mu.Lock()
	defer rt.pool.mu.Unlock()
	cur := rt.pool.set.Load()
	var ups []*upstream
	for _, x := range cur.ups {
		if x.label != raw {
			ups = append(ups, x)
		}
	}
	switch {
	case len(ups) == len(cur.ups):
		return errNoTarget
	case len(ups) == 0:
		return errLastTarget
	}
	rt.pool.set.Store(newUpstreamSet(ups))
	return nil
}

// setWeight changes an upstream's weight at run time.
func (rt *route) setWeight(raw string, weight uint32) bool {
	rt.pool.mu.Lock()
	defer rt.pool.mu.Unlock()
	return rt.reweightLocked(raw, weight)
}

// setDrained drains (or undrains) the upstream raw of the route; false when the route has
// no such upstream.
func (rt *route) setDrained(raw string, on bool) bool {
	rt.pool.mu.Lock()
	defer rt.pool.mu.Unlock()
	for _, x := range rt.pool.set.Load().ups {
		if x.label == raw {
			x.drained.Store(on)
			return true
		}
	}
	return false
}

// reweightLocked sets the weight of the upstream raw if the route has it (and rebuilds the
// balancing set); the caller holds rt.pool.mu.
func (rt *route) reweightLocked(raw string, weight uint32) bool {
	cur := rt.pool.set.Load()
	for _, x := range cur.ups {
		if x.label == raw {
			x.weight.Store(weight)
			rt.pool.set.Store(newUpstreamSet(cur.ups))
			return true
		}
	}
	return false
}
