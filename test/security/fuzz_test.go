package security_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/canonical"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// FuzzRequestIdentity sends random Host and path spellings through a real Conduit and checks
// that the site (and so the guard's decision), the cache's decision and what the upstream
// receives all come from one canonical value: a guarded host in any spelling is guarded, a
// refused request reaches nobody, the upstream only ever sees canonical hosts and paths,
// a skipped path is never served from the cache, and sending the upstream's view again
// yields the same view.
func FuzzRequestIdentity(f *testing.F) {
	for _, s := range [][2]string{
		{"admin.test", "/"}, {"ADMIN.TEST.", "/x"}, {"admin.test.:8080", "/a/../b"},
		{"shop.test:666", "/private//me"}, {"shop.test", "/private/%2e%2e/private/x"},
		{"shop.test", "/x/..;/y"}, {"shop.test", "/%252e%252e/"}, {"shop.test", "/%252%450"}, {"bücher.test", "/%41"},
		{"shop.test", "/public/../private/me"}, {"[::1]:8080", "/a%2fb"},
	} {
		f.Add(s[0], s[1])
	}
	up := newEcho(f)
	srv := servertest.Start(f, loadConfig(f, "identity-fuzz.yaml", strings.TrimPrefix(up.URL, "http://")))
	addr := srv.HostPort(8080)
	f.Fuzz(func(t *testing.T, host, path string) {
		if strings.ContainsAny(host+path, " \r\n\t") || path == "" || path[0] != '/' {
			return // not one request line and one Host line
		}
		mark := up.count()
		a := send(t, addr, request{target: path, host: host})
		got := up.since(mark)
		if a.status == http.StatusBadRequest {
			if len(got) != 0 {
				t.Fatalf("refused request (Host %q, %q) reached the upstream as %q", host, path, got[0].Target)
			}
			return
		}
		name, _, err := canonical.Host(host, "http")
		if err != nil {
			t.Fatalf("Host %q has no canonical form but got %d", host, a.status)
		}
		guarded := naiveHostname(host) == "admin.test"
		if guarded != (a.status == http.StatusUnauthorized) || (name == "admin.test") != guarded {
			t.Fatalf("Host %q (canonical %q): status %d, guarded %v", host, name, a.status, guarded)
		}
		if a.status != http.StatusOK {
			return
		}
		if a.header.Get("X-Cache") == "HIT" {
			p, _, _ := strings.Cut(path, "?")
			esc, dec, _ := canonical.Path(p, canonical.PathOptions{})
			if dec == "/private" || strings.HasPrefix(dec, "/private/") {
				t.Fatalf("%q (canonical %q) is under skipPaths but was served from the cache", path, esc)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("(Host %q, %q): 200 without the cache, upstream got %d requests", host, path, len(got))
		}
		s := got[0]
		if p, _, _ := strings.Cut(s.Target, "?"); !isCanonicalPath(p) {
			t.Fatalf("upstream received the non-canonical %q for %q", s.Target, path)
		}
		if h, p, err := canonical.Host(s.Host, "http"); err != nil || canonical.Authority(h, p) != s.Host {
			t.Fatalf("upstream received the non-canonical Host %q for %q", s.Host, host)
		}
		mark = up.count()
		b := send(t, addr, request{target: s.Target, host: s.Host})
		if again := up.since(mark); b.status == http.StatusOK && len(again) == 1 && (again[0].Target != s.Target || again[0].Host != s.Host) {
			t.Fatalf("the upstream's view %q %q sent again became %q %q", s.Host, s.Target, again[0].Host, again[0].Target)
		}
	})
}

// naiveHostname is an independent, simple spelling of the rule for ASCII names: the host
// without its port and one trailing dot, in lower case.
func naiveHostname(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func isCanonicalPath(p string) bool {
	esc, _, err := canonical.Path(p, canonical.PathOptions{})
	return err == nil && esc == p
}
