package kubernetes

import (
	"sort"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// siteFileKeys are the site keys whose value names files or directories on Conduit's host
// (or code loaded from there): a ConduitSite may not use them, whatever their value.
var siteFileKeys = []string{"static", "upload", "middleware"}

// nestedFileKeys are the keys inside a site section that name host files.
var nestedFileKeys = map[string][]string{
	"tls":      {"cert", "key", "ca", "clientAuth"},
	"logging":  {"file"},
	"fallback": {"file"},
}

// networkStoreSchemes are the `store:` URL schemes a ConduitSite may use: stores reached over
// the network. Any other scheme (disk: names a host directory) is refused, so a store added
// later that reads host files is refused until it is listed here.
var networkStoreSchemes = map[string]bool{"redis": true, "rediss": true}

// HostFileKeys returns the paths (relative to the site, "tls.cert", "routes[0].static") of
// every key in site that names a file or directory on Conduit's host: the trust boundary of
// a ConduitSite (docs/deployment.md). The list is sorted; empty means the site may be served.
func HostFileKeys(site map[string]config.Node) []string {
	var out []string
	hostFileKeys(site, "", &out)
	findStores(site, "", &out)
	sort.Strings(out)
	return out
}

// hostFileKeys appends the host-file keys of one site or routes[] entry.
func hostFileKeys(m map[string]config.Node, prefix string, out *[]string) {
	for _, k := range siteFileKeys {
		if _, ok := m[k]; ok {
			*out = append(*out, config.Join(prefix, k))
		}
	}
	for section, keys := range nestedFileKeys {
		sub, ok := m[section].(map[string]config.Node)
		if !ok {
			continue
		}
		for _, k := range keys {
			if _, ok := sub[k]; ok {
				*out = append(*out, config.Join(config.Join(prefix, section), k))
			}
		}
	}
	if tls, ok := m["tls"].(map[string]config.Node); ok {
		if acme, ok := tls["acme"].(map[string]config.Node); ok {
			if _, ok := acme["storage"]; ok {
				*out = append(*out, config.Join(prefix, "tls.acme.storage"))
			}
		}
	}
	if fb, ok := m["fallback"].(map[string]config.Node); ok {
		if by, ok := fb["byAccept"].(map[string]config.Node); ok {
			for accept, rule := range by {
				if r, ok := rule.(map[string]config.Node); ok {
					if _, ok := r["file"]; ok {
						*out = append(*out, config.Join(prefix, "fallback.byAccept."+accept+".file"))
					}
				}
			}
		}
	}
	if routes, ok := m["routes"].([]config.Node); ok {
		for i, r := range routes {
			if rm, ok := r.(map[string]config.Node); ok {
				hostFileKeys(rm, config.Index(config.Join(prefix, "routes"), i), out)
			}
		}
	}
}

// findStores appends the path of every `store` value, at any depth, whose URL scheme is not
// a network store's.
func findStores(n config.Node, path string, out *[]string) {
	switch v := n.(type) {
	case map[string]config.Node:
		for k, c := range v {
			p := config.Join(path, k)
			if s, ok := c.(string); ok && k == "store" {
				if scheme, _, found := strings.Cut(s, ":"); found && !networkStoreSchemes[strings.ToLower(scheme)] {
					*out = append(*out, p)
				}
				continue
			}
			findStores(c, p, out)
		}
	case []config.Node:
		for i, c := range v {
			findStores(c, config.Index(path, i), out)
		}
	}
}
