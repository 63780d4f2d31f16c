package core

import (
	"fmt"

	"github.com/conduitproxy/conduit/core/config"
)

// SiteValue names a typed fact about one site that the module owning its keys computes and
// other modules read, so that no module decodes another module's keys. The owner pairs the
// value with a function in its registration (Module.Provides, through Provide); a reader
// calls Get while it provisions. Get runs the owner's function itself, on first use, so the
// value is the same whichever module's Site runs first; the result is kept for the rest of
// the site's provisioning.
//
// The values are declared here, next to their type, so owner and readers agree on it without
// importing each other.
type SiteValue[T any] struct {
	name string
}

// The site values modules exchange.
var (
	// BodyBufferLimit is the largest request body a handler may buffer whole in memory to
	// send it more than once (retries, mirroring): limits.maxBodyBufferBytes, provided by
	// the limits module. Unset when the site does not set it; readers apply their default.
	BodyBufferLimit = NewSiteValue[int64]("bodyBufferLimit")
	// ServedDirs are the directories the site serves files from: the site's `static` and
	// the `static` targets of its routes[] entries, as configured (not cleaned), provided by
	// the static module. Unset when the site serves no directory.
	ServedDirs = NewSiteValue[[]string]("servedDirs")
	// LogJSON reports that the site's access log is JSON lines (`logging: json`), provided
	// by the access log module; the process log follows it (server.Generation.ProcessLogJSON).
	LogJSON = NewSiteValue[bool]("logJSON")
	// RawConnections is true for a site that serves the raw connections of its port instead
	// of HTTP (a core.ConnHandler), provided by the tcp module from its `tcp` key. Modules
	// whose keys mean something only for HTTP requests read it to refuse them there.
	RawConnections = NewSiteValue[bool]("rawConnections")
)

// NewSiteValue declares a site value. name must be unique among site values; it appears in
// Register's panics.
func NewSiteValue[T any](name string) SiteValue[T] { return SiteValue[T]{name: name} }

// Name returns the value's name.
func (v SiteValue[T]) Name() string { return v.name }

// SiteValueProvider pairs a site value with the function its owner computes it with; put it
// in Module.Provides.
type SiteValueProvider struct {
	name string
	fn   func(ctx *SiteContext) (any, bool)
}

// Provide returns the provider of v that computes it with fn, from the owner's own keys.
// fn reports false when the site does not set the value. It must not record diagnostics:
// the owner's Site reports problems with its keys (use SiteContext.DecodeQuietly).
func (v SiteValue[T]) Provide(fn func(ctx *SiteContext) (T, bool)) SiteValueProvider {
	return SiteValueProvider{name: v.name, fn: func(ctx *SiteContext) (any, bool) { return fn(ctx) }}
}

// siteValueResult is a computed site value, kept in the site context's memo.
type siteValueResult struct {
	v  any
	ok bool
}

// Get returns the value for the site ctx provisions. ok is false when the site does not set
// it or when no compiled-in module provides it.
func (v SiteValue[T]) Get(ctx *SiteContext) (val T, ok bool) {
	res := MemoOf(ctx, "core.sitevalue|"+v.name, func() siteValueResult {
		p, found := providerOf(v.name)
		if !found {
			return siteValueResult{}
		}
		x, ok := p.fn(ctx)
		return siteValueResult{v: x, ok: ok}
	})
	if !res.ok {
		return val, false
	}
	return res.v.(T), true
}

// claimProviders records m's site value providers, after checkProviders accepted them. The
// caller holds the registry's lock.
func claimProviders(m *Module) {
	for _, p := range m.Provides {
		registry.values[p.name] = registeredProvider{SiteValueProvider: p, owner: m.ID}
	}
}

// checkProviders panics when a site value m provides is already provided (by another
// module, or twice by m); Register calls it before it claims anything.
func checkProviders(m *Module) {
	seen := map[string]bool{}
	for _, p := range m.Provides {
		if prev, dup := registry.values[p.name]; dup {
			panic(fmt.Sprintf("core.Register: site value %q is provided by both %s and %s", p.name, prev.owner, m.ID))
		}
		if seen[p.name] {
			panic(fmt.Sprintf("core.Register: site value %q is provided twice by %s", p.name, m.ID))
		}
		seen[p.name] = true
	}
}

// registeredProvider is a provider and the ID of the module that registered it.
type registeredProvider struct {
	SiteValueProvider
	owner string
}

// providerOf returns the provider of the site value name, if a compiled-in module has one.
func providerOf(name string) (registeredProvider, bool) {
	registry.RLock()
	defer registry.RUnlock()
	p, ok := registry.values[name]
	return p, ok
}

// DecodeQuietly decodes the section of key into out without recording problems, for a
// module that reads its own key a second time (a SiteValue provider, a routes[] handler);
// the module's Site reports the problems once. It reports whether the key was present.
func (c *SiteContext) DecodeQuietly(key string, out any) bool {
	n, ok := c.raw[key]
	if !ok {
		return false
	}
	config.Decode(n, c.Path(key), out, &config.Diagnostics{})
	return true
}

// HandlerSection is the node of a handler key in one routes[] entry.
type HandlerSection struct {
	// Node is the key's value.
	Node config.Node
	// Path is its diagnostic path ("sites[0].routes[2].static").
	Path string
}

// HandlerSections returns the nodes of a handler key (one of a module's HandlerKeys) in the
// site's routes[] entries, in file order, for a SiteValue provider that must see the
// entries' targets before the core builds them. Entries that are not objects are skipped
// (the core reports them).
func (c *SiteContext) HandlerSections(key string) []HandlerSection {
	list, _ := c.raw["routes"].([]config.Node)
	var out []HandlerSection
	for i, e := range list {
		if m, ok := e.(map[string]config.Node); ok {
			if n, ok := m[key]; ok {
				out = append(out, HandlerSection{Node: n, Path: config.Join(config.Index(c.Path("routes"), i), key)})
			}
		}
	}
	return out
}
