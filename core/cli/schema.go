package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
)

func init() {
	RegisterCommand(Command{Name: "schema", Summary: "print the JSON Schema of this binary's config (for editors)", Run: runSchema, NoConfig: true})
}

// SchemaID is the $id of the schema `conduit schema` prints.
const SchemaID = "urn:conduit:config-schema"

func runSchema(env *Env, args []string) int {
	if code, ok := parseNoArgs(env, "schema", args); !ok {
		return code
	}
	b, err := SchemaJSON()
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit schema: %v\n", err)
		return 1
	}
	_, _ = env.Stdout.Write(b)
	return 0
}

// SchemaJSON returns the JSON Schema (2020-12) of the config this binary reads, indented,
// with a final newline: the three shapes (one site, {global, sites}, a list of sites), the
// core's site keys, and every key of every registered module, typed by the module's
// ConfigTypes (config.Schema) or open when it has none. Keys of first-party modules not
// compiled in (core.CatalogEntries) are in it too, so an editor does not flag a valid file.
func SchemaJSON() ([]byte, error) {
	b, err := json.MarshalIndent(BuildSchema(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// BuildSchema returns the schema SchemaJSON prints, as a JSON value.
func BuildSchema() map[string]any {
	// The core's own keys, from the types the server decodes them into.
	site := server.SiteCoreSchema()
	global, _ := config.Schema(server.GlobalSettings{})["properties"].(map[string]any)
	tlsProps, _ := site["tls"].(map[string]any)["properties"].(map[string]any)
	routeItems, _ := site["routes"].(map[string]any)["items"].(map[string]any)
	handler, _ := routeItems["properties"].(map[string]any)
	route := map[string]any{}
	entries := map[string]any{} // middleware[] entry schemas by type
	compiled := map[string]bool{}
	for _, m := range core.Modules() {
		compiled[m.Feature] = true
		desc := m.Description
		if desc == "" {
			desc = m.ID
		}
		desc += " (feature " + m.Feature + ")"
		keyed := func(key string, place string) map[string]any {
			s := map[string]any{}
			if v, ok := m.ConfigTypes[place+key]; ok && place != "" {
				s = config.Schema(v) // a handler key typed apart from the site key
			} else if v, ok := m.ConfigTypes[key]; ok {
				s = config.Schema(v)
			}
			s["description"] = desc
			return s
		}
		for _, set := range []struct {
			keys  []string
			into  map[string]any
			site  bool
			route bool
			place string
		}{{m.SiteKeys, site, true, false, ""}, {m.GlobalKeys, global, false, false, ""}, {m.RouteKeys, route, false, true, ""}, {m.HandlerKeys, handler, false, false, "handler."}} {
			for _, k := range set.keys {
				if sub, ok := strings.CutPrefix(k, "tls."); ok && set.site && tlsProps != nil {
					tlsProps[sub] = keyed(k, "") // tls.acme: a key inside the core's tls block
					continue
				}
				if set.route {
					// The proxy builds a route key's stage only when its value is not
					// null (modules/proxy, buildHandler).
					set.into[k] = config.Nullable(keyed(k, set.place))
					continue
				}
				set.into[k] = keyed(k, set.place)
			}
		}
		for _, t := range m.MiddlewareTypes {
			entries[t] = keyed(core.MiddlewareCatalogKey(t), "")
		}
	}
	for _, e := range core.CatalogEntries() {
		if compiled[e.Feature] {
			continue
		}
		note := map[string]any{"description": "feature " + e.Feature + " (not in this binary: `conduit features` says which build has it)"}
		switch kind, key := splitCatalogKey(e.Key); kind {
		case "site":
			site[key] = note
		case "global":
			global[key] = note
		case "route":
			route[key] = note
		case "handler":
			handler[key] = note
		}
	}
	proxyFirst(routeItems, handler)
	site["middleware"].(map[string]any)["items"] = middlewareEntrySchema(entries)
	siteSchema := map[string]any{"type": "object", "properties": site}
	return map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         SchemaID,
		"title":       "Conduit configuration",
		"description": "One site, {global, sites}, or a list of sites (docs/configuration.md).",
		"$defs": map[string]any{
			"site":   siteSchema,
			"global": map[string]any{"type": "object", "properties": global},
			// The keys other modules own inside a proxy route object (cache, rateLimit,
			// extAuthz), for the proxy's route schema to refer to.
			"routeKeys": map[string]any{"type": "object", "properties": route},
		},
		"anyOf": []any{
			map[string]any{"type": "object", "required": []any{"sites"}, "properties": map[string]any{
				"global": map[string]any{"$ref": "#/$defs/global"},
				"sites":  map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/site"}},
			}},
			// One site: an object without sites (sites makes it the multi-site shape, as
			// config.classify reads it).
			map[string]any{"allOf": []any{
				map[string]any{"$ref": "#/$defs/site"},
				map[string]any{"not": map[string]any{"required": []any{"sites"}}},
			}},
			map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/site"}},
		},
	}
}

// proxyFirst makes the schema of a routes[] entry's static apply only when the entry has no
// proxy (absent or null): with both, the server builds the proxy and ignores static with a
// warning (core/server/site.go, buildRoutes), so static's value is never decoded.
func proxyFirst(entry, handler map[string]any) {
	st, ok := handler["static"].(map[string]any)
	if _, proxy := handler["proxy"]; !ok || !proxy {
		return
	}
	open := map[string]any{}
	if d, ok := st["description"]; ok {
		open["description"] = d
	}
	handler["static"] = open
	entry["if"] = map[string]any{"properties": map[string]any{"proxy": map[string]any{"type": "null"}}}
	entry["then"] = map[string]any{"properties": map[string]any{"static": st}}
}

// middlewareEntrySchema is the schema of one `middleware[]` entry: an object whose type is
// one of the known types (buildMiddlewareList refuses any other, except the reserved
// "headers", which it accepts with a warning), and whose other keys follow the schema of the
// module that builds that type (its ConfigTypes["middleware.<type>"]).
func middlewareEntrySchema(entries map[string]any) map[string]any {
	types := append(middlewareTypes(), "headers")
	var cases []any
	for _, t := range slices.Sorted(maps.Keys(entries)) {
		cases = append(cases, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": t}}, "required": []any{"type"}},
			"then": entries[t],
		})
	}
	s := map[string]any{
		"type":       "object",
		"properties": map[string]any{"type": map[string]any{"type": "string", "enum": types, "description": "the module that builds the entry"}},
		"required":   []any{"type"},
	}
	if len(cases) > 0 {
		s["allOf"] = cases
	}
	return s
}

// middlewareTypes lists every `middleware[]` type the catalog and this binary know.
func middlewareTypes() []any {
	var names []string
	for _, m := range core.Modules() {
		names = append(names, m.MiddlewareTypes...)
	}
	for _, t := range core.CatalogMiddlewareTypes() {
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	sort.Strings(names)
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = n
	}
	return out
}

// splitCatalogKey splits a catalog key ("global.admin", "route.cache", "jwtAuth") into its
// place and the key; "tls.acme"-style nested site keys and middleware types are "other".
func splitCatalogKey(k string) (kind, key string) {
	for _, p := range []string{"global", "route", "handler", "middleware"} {
		if len(k) > len(p)+1 && k[:len(p)+1] == p+"." {
			if p == "middleware" {
				return "other", k
			}
			return p, k[len(p)+1:]
		}
	}
	for _, r := range k {
		if r == '.' {
			return "other", k
		}
	}
	return "site", k
}
