package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
)

func init() {
	RegisterCommand(Command{
		Name:    "features",
		Summary: "list this binary's modules; with -c FILE, the features the config needs and how to build them",
		Run:     runFeatures,
	})
}

// bundleOrder ranks the bundles, smallest first; each contains the ones before it.
var bundleOrder = []string{"minimal", "standard", "full"}

// moduleJSON is one module in `conduit features --json`.
type moduleJSON struct {
	ID          string   `json:"id"`
	Feature     string   `json:"feature"`
	Package     string   `json:"package"`
	Version     string   `json:"version,omitempty"`
	Stage       string   `json:"stage"`
	Description string   `json:"description,omitempty"`
	SiteKeys    []string `json:"siteKeys,omitempty"`
	GlobalKeys  []string `json:"globalKeys,omitempty"`
	RouteKeys   []string `json:"routeKeys,omitempty"`
	HandlerKeys []string `json:"handlerKeys,omitempty"`
}

// binaryJSON is `conduit features --json` without a config.
type binaryJSON struct {
	Version  string       `json:"version"`
	Features []string     `json:"features"`
	Modules  []moduleJSON `json:"modules"`
}

// featureUse is one required feature and where the config uses it.
type featureUse struct {
	Feature string `json:"feature"`
	// Bundle is the smallest bundle with the feature; "" for a third-party module or a
	// feature no build of this version has.
	Bundle string `json:"bundle,omitempty"`
	// Unavailable reports a feature no build of this version has (a planned key).
	Unavailable bool `json:"unavailable,omitempty"`
	// With is the --with argument for a third-party module.
	With string `json:"with,omitempty"`
	// Compiled reports whether this binary has the feature.
	Compiled bool `json:"compiled"`
	// Paths are the config paths that need it.
	Paths []string `json:"paths"`
	// Aliases are the feature's other names (the original Conduit's, such as "rhai"),
	// which xbuild --features and global.allowMissingFeatures accept too.
	Aliases []string `json:"aliases,omitempty"`
}

// configReport is `conduit features -c FILE --json`.
type configReport struct {
	// Required are the feature names the config needs, sorted.
	Required []string `json:"required"`
	// Bundle is the smallest bundle covering every first-party feature.
	Bundle string `json:"bundle"`
	// Build is the xbuild command for the smallest binary that serves the config.
	Build string `json:"build"`
	// Missing are the required features this binary lacks.
	Missing []string `json:"missing"`
	// Unavailable are the required features no build of this version has; Build leaves
	// them out.
	Unavailable []string `json:"unavailable,omitempty"`
	// Unknown are config paths whose key no module (here or in the catalog) owns; with any,
	// `conduit features` exits 1 and recommends no build.
	Unknown []string `json:"unknown,omitempty"`
	// Uses details each required feature.
	Uses []featureUse `json:"uses"`
}

func runFeatures(env *Env, args []string) int {
	fs := newFlagSet(env, "features")
	var cf ConfigFlags
	cf.Register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	SetUsage(fs, "[--json] [-c FILE | FILE]")
	if code, ok := cf.Parse(env, fs, args); !ok {
		return code
	}
	if cf.Path == "" {
		return printBinary(env.Stdout, *asJSON)
	}
	doc, err := cf.Load(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	rep := analyzeConfig(doc)
	if *asJSON {
		if err := writeJSON(env.Stdout, rep); err != nil {
			fmt.Fprintln(env.Stderr, err)
			return 1
		}
	} else {
		printReport(env.Stdout, doc.Path, rep)
	}
	if len(rep.Missing) > 0 || len(rep.Unknown) > 0 {
		return 1
	}
	return 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// printBinary lists the modules compiled into this binary.
func printBinary(w io.Writer, asJSON bool) int {
	out := binaryJSON{Version: Version(), Features: core.Features(), Modules: []moduleJSON{}}
	for _, m := range core.Modules() {
		out.Modules = append(out.Modules, moduleJSON{
			ID: m.ID, Feature: m.Feature, Package: m.Package, Version: moduleVersion(m),
			Stage: m.Stage.String(), Description: m.Description,
			SiteKeys: m.SiteKeys, GlobalKeys: m.GlobalKeys, RouteKeys: m.RouteKeys, HandlerKeys: m.HandlerKeys,
		})
	}
	if out.Features == nil {
		out.Features = []string{}
	}
	if asJSON {
		if err := writeJSON(w, out); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(w, "conduit %s: %d modules\n", out.Version, len(out.Modules))
	for _, m := range out.Modules {
		pkg := m.Package
		if m.Version != "" {
			pkg += " (" + m.Version + ")"
		}
		fmt.Fprintf(w, "  %-36s %-12s %s\n", m.ID, m.Feature, pkg)
	}
	return 0
}

func printReport(w io.Writer, path string, rep *configReport) {
	fmt.Fprintf(w, "%s needs %d features:\n", path, len(rep.Required))
	for _, u := range rep.Uses {
		where := u.Bundle
		if u.With != "" {
			where = "third-party " + u.With
		}
		state := ""
		switch {
		case u.Unavailable:
			where = "none"
			state = "  NOT IN ANY BUILD OF THIS VERSION"
		case !u.Compiled:
			state = "  NOT IN THIS BINARY"
		}
		aka := ""
		if len(u.Aliases) > 0 {
			aka = " (also: " + strings.Join(u.Aliases, ", ") + ")"
		}
		fmt.Fprintf(w, "  %-12s %-10s %s%s%s\n", u.Feature, where, strings.Join(u.Paths, ", "), state, aka)
	}
	for _, p := range rep.Unknown {
		fmt.Fprintf(w, "  unknown key %s (no module in this binary or the catalog owns it)\n", p)
	}
	if len(rep.Unknown) > 0 {
		// A build made from this report would serve the config without those keys.
		fmt.Fprintln(w, "no build recommended: fix or remove the unknown keys first (`conduit validate` suggests the nearest key)")
	} else {
		fmt.Fprintf(w, "smallest bundle: %s\n", rep.Bundle)
		fmt.Fprintf(w, "build: %s\n", rep.Build)
	}
	if len(rep.Unavailable) > 0 {
		fmt.Fprintf(w, "not available in any build of this version (remove these keys): %s\n", strings.Join(rep.Unavailable, ", "))
	}
	if len(rep.Missing) > 0 {
		fmt.Fprintf(w, "missing from this binary: %s\n", strings.Join(rep.Missing, ", "))
	}
}

// analyzer walks a config document and records the features it uses.
type analyzer struct {
	reg     registryView
	uses    map[string]*featureUse
	unknown []string
}

// registryView is the part of the module registry the analyzer reads; tests substitute one.
type registryView struct {
	site, global, route, handler, middleware func(key string) (*core.Module, bool)
	features                                 func() []string
}

// liveRegistry reads this binary's registry.
var liveRegistry = registryView{
	site: core.ModuleForSiteKey, global: core.ModuleForGlobalKey, route: core.ModuleForRouteKey,
	handler: core.ModuleForHandlerKey, middleware: core.ModuleForMiddlewareType, features: core.Features,
}

// analyzeConfig returns the features doc needs, the smallest bundle, the xbuild command and
// what this binary lacks. It reads the registry and the generated catalog (core.LookupCatalog);
// it builds nothing.
func analyzeConfig(doc *config.Document) *configReport {
	return analyzeWith(doc, liveRegistry)
}

func analyzeWith(doc *config.Document, reg registryView) *configReport {
	a := &analyzer{reg: reg, uses: map[string]*featureUse{}}
	for _, k := range config.SortedKeys(doc.Global) {
		a.globalKey(k, doc.Global[k])
	}
	for i, site := range doc.Sites {
		base := doc.SitePath(i)
		for _, k := range config.SortedKeys(site) {
			a.siteKey(config.Join(base, k), k, site[k])
		}
	}
	return a.report()
}

func (a *analyzer) globalKey(k string, v config.Node) {
	path := config.Join("global", k)
	if e, ok := core.LookupCatalog("global." + k); ok {
		_, compiled := a.reg.global(k)
		a.first(e, path, compiled)
		return
	}
	if slices.Contains(server.CoreGlobalKeys(), k) {
		return
	}
	if m, ok := a.reg.global(k); ok {
		a.module(m, path)
		return
	}
	a.unknown = append(a.unknown, path)
}

func (a *analyzer) siteKey(path, k string, v config.Node) {
	switch {
	case k == "tls":
		if m, ok := v.(map[string]config.Node); ok {
			if _, has := m["acme"]; has {
				_, compiled := a.reg.site("tls.acme")
				e, _ := core.LookupCatalog("tls.acme")
				a.first(e, config.Join(path, "acme"), compiled)
			}
		}
		return
	case k == "routes":
		a.routes(path, v)
		return
	case k == "middleware":
		a.middleware(path, v)
		return
	case slices.Contains(server.CoreSiteKeys(), k):
		return
	}
	var shape core.CatalogEntry
	if e, ok := core.LookupCatalog(k); ok {
		_, compiled := a.reg.site(k)
		a.first(e, path, compiled)
		shape = e
	} else if m, ok := a.reg.site(k); ok {
		a.module(m, path)
		shape = core.CatalogEntry{RouteMap: slices.Contains(m.RouteMapKeys, k), Store: m.StoreValued}
	} else {
		a.unknown = append(a.unknown, path)
		return
	}
	a.inside(shape, path, v)
}

// inside walks what the registration of a key says its value holds: route objects (the
// proxy map) and `store:` URLs.
func (a *analyzer) inside(shape core.CatalogEntry, path string, v config.Node) {
	if shape.RouteMap {
		a.proxy(path, v)
	}
	if shape.Store {
		a.store(path, v)
	}
}

// routes walks routes[]: each entry's handler key (proxy, static) and its route object.
func (a *analyzer) routes(path string, v config.Node) {
	list, ok := v.([]config.Node)
	if !ok {
		return
	}
	for i, item := range list {
		entry, ok := item.(map[string]config.Node)
		if !ok {
			continue
		}
		p := config.Index(path, i)
		for _, k := range config.SortedKeys(entry) {
			if k == "match" {
				continue
			}
			kp := config.Join(p, k)
			var shape core.CatalogEntry
			if e, ok := core.LookupCatalog("handler." + k); ok {
				_, compiled := a.reg.handler(k)
				a.first(e, kp, compiled)
				shape = e
			} else if m, ok := a.reg.handler(k); ok {
				a.module(m, kp)
				shape = core.CatalogEntry{RouteMap: slices.Contains(m.RouteMapKeys, k), Store: m.StoreValued}
			} else {
				a.unknown = append(a.unknown, kp)
				continue
			}
			a.inside(shape, kp, entry[k])
		}
	}
}

// middleware walks the middleware[] list: each entry's type names the feature that builds it.
func (a *analyzer) middleware(path string, v config.Node) {
	list, ok := v.([]config.Node)
	if !ok {
		return
	}
	for i, item := range list {
		entry, _ := item.(map[string]config.Node)
		typ, _ := entry["type"].(string)
		if typ == "" || server.IsReservedMiddlewareType(typ) {
			continue
		}
		p := config.Join(config.Index(path, i), "type")
		if e, ok := core.LookupCatalog(core.MiddlewareCatalogKey(typ)); ok {
			_, compiled := a.reg.middleware(typ)
			a.first(e, p, compiled)
		} else if m, ok := a.reg.middleware(typ); ok {
			a.module(m, p)
		} else {
			a.unknown = append(a.unknown, p)
		}
	}
}

// proxy walks the proxy map: `proxy: URL`, `proxy: {/path: URL | route object}`, or a
// single route object.
func (a *analyzer) proxy(path string, v config.Node) {
	m, ok := v.(map[string]config.Node)
	if !ok {
		return
	}
	isPathMap := false
	for k := range m {
		if strings.HasPrefix(k, "/") {
			isPathMap = true
			break
		}
	}
	if !isPathMap {
		a.routeObject(path, m)
		return
	}
	for _, k := range config.SortedKeys(m) {
		a.routeObject(config.Join(path, k), m[k])
	}
}

// routeObject records the route-level keys (cache, rateLimit) of one proxy route object.
func (a *analyzer) routeObject(path string, v config.Node) {
	m, ok := v.(map[string]config.Node)
	if !ok {
		return
	}
	for _, k := range config.SortedKeys(m) {
		kp := config.Join(path, k)
		if e, ok := core.LookupCatalog("route." + k); ok {
			_, compiled := a.reg.route(k)
			a.first(e, kp, compiled)
			a.inside(e, kp, m[k])
		} else if mod, ok := a.reg.route(k); ok && !isCorePackage(mod.Package) {
			a.module(mod, kp)
			a.inside(core.CatalogEntry{Store: mod.StoreValued}, kp, m[k])
		}
	}
}

// store records the feature behind a `store: scheme:…` value (core.LookupStoreScheme).
func (a *analyzer) store(path string, v config.Node) {
	m, ok := v.(map[string]config.Node)
	if !ok {
		return
	}
	s, ok := m["store"].(string)
	if !ok {
		return
	}
	// The scheme ends at the first colon: redis://host, disk:/path.
	scheme, _, found := strings.Cut(s, ":")
	if !found {
		return
	}
	if e, ok := core.LookupStoreScheme(strings.ToLower(scheme)); ok {
		a.first(e, config.Join(path, "store"), slices.Contains(a.reg.features(), e.Feature))
	}
}

// first records a use of a first-party (catalog) feature.
func (a *analyzer) first(e core.CatalogEntry, path string, compiled bool) {
	if e.Feature == "" {
		return
	}
	u := a.uses[e.Feature]
	if u == nil {
		u = &featureUse{Feature: e.Feature, Bundle: e.Bundle, Unavailable: !e.Available(), Compiled: true, Aliases: core.FeatureAliases(e.Feature)}
		a.uses[e.Feature] = u
	}
	u.Compiled = u.Compiled && compiled
	u.Paths = append(u.Paths, path)
}

// module records a use of a module this binary has but the catalog does not know: a
// third-party module (or a first-party one newer than the catalog).
func (a *analyzer) module(m *core.Module, path string) {
	u := a.uses[m.Feature]
	if u == nil {
		u = &featureUse{Feature: m.Feature, Compiled: true}
		if !isCorePackage(m.Package) {
			u.With = withArg(m)
		} else {
			u.Bundle = "minimal"
		}
		a.uses[m.Feature] = u
	}
	u.Paths = append(u.Paths, path)
}

func isCorePackage(pkg string) bool {
	return pkg == coreModulePath || strings.HasPrefix(pkg, coreModulePath+"/")
}

// withArg renders the xbuild --with argument for a third-party module from the build info:
// module@version, module=dir for a module replaced by a local directory, or the bare package
// path when the build info does not know it.
func withArg(m *core.Module) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return m.Package
	}
	var best *debug.Module
	for _, dep := range bi.Deps {
		if (m.Package == dep.Path || strings.HasPrefix(m.Package, dep.Path+"/")) && (best == nil || len(dep.Path) > len(best.Path)) {
			best = dep
		}
	}
	switch {
	case best == nil:
		return m.Package
	case best.Replace != nil && (best.Replace.Version == "" || best.Replace.Version == "(devel)"):
		return best.Path + "=" + best.Replace.Path
	case best.Replace != nil:
		return best.Path + "@" + best.Version + "=" + best.Replace.Path + "@" + best.Replace.Version
	case best.Version == "" || best.Version == "(devel)":
		return best.Path
	default:
		return best.Path + "@" + best.Version
	}
}

func (a *analyzer) report() *configReport {
	rep := &configReport{Required: []string{}, Missing: []string{}, Uses: []featureUse{}, Bundle: bundleOrder[0], Unknown: a.unknown}
	rank := func(b string) int { return slices.Index(bundleOrder, b) }
	var extras, with []string
	for _, name := range sortedUseNames(a.uses) {
		u := a.uses[name]
		sort.Strings(u.Paths)
		rep.Uses = append(rep.Uses, *u)
		rep.Required = append(rep.Required, u.Feature)
		if !u.Compiled {
			rep.Missing = append(rep.Missing, u.Feature)
		}
		switch {
		case u.Unavailable:
			rep.Unavailable = append(rep.Unavailable, u.Feature)
		case u.With != "":
			with = append(with, u.With)
		case rank(u.Bundle) > 0:
			extras = append(extras, u.Feature)
			if rank(u.Bundle) > rank(rep.Bundle) {
				rep.Bundle = u.Bundle
			}
		}
	}
	cmd := []string{core.XBuildFeatures(extras)}
	for _, w := range with {
		cmd = append(cmd, "--with", w)
	}
	rep.Build = strings.Join(cmd, " ")
	return rep
}

func sortedUseNames(m map[string]*featureUse) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
