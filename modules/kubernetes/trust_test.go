package kubernetes

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func TestHostFileKeys(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want []string
	}{
		{"proxy only", `{"port":8080,"proxy":"http://up:80"}`, nil},
		{"static", `{"port":8080,"static":"/etc"}`, []string{"static"}},
		{"static object", `{"static":{"root":"/srv"}}`, []string{"static"}},
		{"upload", `{"upload":{"path":"/up"}}`, []string{"upload"}},
		{"middleware", `{"middleware":[]}`, []string{"middleware"}},
		{"tls cert and key", `{"tls":{"cert":"/c.pem","key":"/k.pem"}}`, []string{"tls.cert", "tls.key"}},
		{"tls ca", `{"tls":{"ca":"/ca.pem"}}`, []string{"tls.ca"}},
		{"tls clientAuth", `{"tls":{"clientAuth":{"ca":"/ca.pem"}}}`, []string{"tls.clientAuth"}},
		{"tls acme without storage", `{"tls":{"acme":{"email":"a@b.test"}}}`, nil},
		{"tls acme storage", `{"tls":{"acme":{"email":"a@b.test","storage":"/var/lib"}}}`, []string{"tls.acme.storage"}},
		{"tls versions only", `{"tls":{"versions":["1.3"]}}`, nil},
		{"logging file", `{"logging":{"file":"/var/log/x"}}`, []string{"logging.file"}},
		{"logging stdout", `{"logging":{"format":"json"}}`, nil},
		{"fallback file", `{"fallback":{"file":"/etc/passwd"}}`, []string{"fallback.file"}},
		{"fallback body", `{"fallback":{"status":404,"body":"no"}}`, nil},
		{"fallback byAccept file", `{"fallback":{"byAccept":{"text/html":{"file":"/x.html"},"application/json":{"body":"{}"}}}}`, []string{"fallback.byAccept.text/html.file"}},
		{"route static", `{"routes":[{"match":{"path":"/a"},"proxy":"http://u"},{"match":{"path":"/s"},"static":"/srv"}]}`, []string{"routes[1].static"}},
		{"route fallback file", `{"routes":[{"fallback":{"file":"/f"}}]}`, []string{"routes[0].fallback.file"}},
		{"disk store in a proxy route", `{"proxy":{"/":{"url":"http://u","cache":{"store":"disk:/var/cache"}}}}`, []string{"proxy./.cache.store"}},
		{"disk store upper case", `{"rateLimit":{"store":"DISK:/x"}}`, []string{"rateLimit.store"}},
		{"redis store", `{"rateLimit":{"store":"redis://r:6379"},"proxy":{"/":{"url":"http://u","cache":{"store":"rediss://r"}}}}`, nil},
		{"memory store", `{"rateLimit":{"store":"memory"}}`, nil},
		{"unknown store scheme", `{"rateLimit":{"store":"file:/x"}}`, []string{"rateLimit.store"}},
		{"key case differs (not a config key)", `{"Static":"/etc","tls":{"Cert":"/c"}}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var spec map[string]config.Node
			if err := json.Unmarshal([]byte(tc.spec), &spec); err != nil {
				t.Fatal(err)
			}
			got := HostFileKeys(spec)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("HostFileKeys(%s) = %q, want %q", tc.spec, got, tc.want)
			}
		})
	}
}

// FuzzHostFileKeys: any JSON object is checked without a panic, and a site that names one
// of the top-level file keys is never let through.
func FuzzHostFileKeys(f *testing.F) {
	f.Add(`{"static":"/etc"}`)
	f.Add(`{"routes":[{"static":"/srv"},{"fallback":{"byAccept":{"*/*":{"file":"/f"}}}}]}`)
	f.Add(`{"proxy":{"/":{"cache":{"store":"disk:/x"}}},"tls":{"acme":{"storage":"/s"}}}`)
	f.Fuzz(func(t *testing.T, src string) {
		var spec map[string]config.Node
		if json.Unmarshal([]byte(src), &spec) != nil {
			return
		}
		got := HostFileKeys(spec)
		for _, k := range siteFileKeys {
			if _, ok := spec[k]; ok && !slices.Contains(got, k) {
				t.Fatalf("%s: key %q not refused (got %q)", src, k, got)
			}
		}
		for _, p := range got {
			if p == "" || strings.HasPrefix(p, ".") {
				t.Fatalf("%s: malformed path %q", src, p)
			}
		}
	})
}

func TestValidNamespace(t *testing.T) {
	cases := []struct {
		ns string
		ok bool
	}{
		{"default", true},
		{"*", true},
		{"team-a", true},
		{"a1", true},
		{"", false},
		{"Team", false},
		{"-a", false},
		{"a-", false},
		{"a_b", false},
		{"a.b", false},
		{"**", false},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
	}
	for _, tc := range cases {
		if err := ValidNamespace(tc.ns); (err == nil) != tc.ok {
			t.Errorf("ValidNamespace(%q) = %v, want ok=%v", tc.ns, err, tc.ok)
		}
	}
}

func TestSiteDiagnostics(t *testing.T) {
	d := &config.Diagnostics{}
	d.Errorf("sites[1].responseTime.digits", "must be between 0 and 6")
	d.Errorf("sites[10].port", "bad")
	d.Errorf("sites[1]", "whole site")
	d.Errorf("global.workers", "not a site")
	d.Warnf("sites[1].x", "unknown key")
	got := siteDiagnostics(d, 1, false)
	want := []string{"error at spec.responseTime.digits: must be between 0 and 6", "error at spec: whole site"}
	if !slices.Equal(got, want) {
		t.Fatalf("errors of site 1 = %q, want %q", got, want)
	}
	if got := siteDiagnostics(d, 1, true); len(got) != 1 || !strings.Contains(got[0], "warning at spec.x") {
		t.Fatalf("warnings of site 1 = %q", got)
	}
	if got := siteDiagnostics(nil, 0, false); got != nil {
		t.Fatalf("nil diagnostics: %q", got)
	}
	long := clip(strings.Repeat("é", maxMessage))
	if len(long) > maxMessage+len("…") || !strings.HasSuffix(long, "…") {
		t.Fatalf("clip: %d bytes", len(long))
	}
}

func TestNameSites(t *testing.T) {
	sites := []site{{key: "shop/web"}, {key: "shop/other-port"}}
	served := []site{{key: "shop/web"}, {key: "shop/gone"}}
	cases := []struct{ in, want string }{
		{"cold fields changed — restart required: sites[1].port", "cold fields changed — restart required: ConduitSite shop/other-port spec.port"},
		{"port 9090 removed (sites[1].port)", "port 9090 removed (ConduitSite shop/gone spec.port)"},
		{"sites[0].tls, sites[7].port", "ConduitSite shop/web spec.tls, sites[7].port"},
		{"no site here", "no site here"},
	}
	for _, tc := range cases {
		if got := nameSites(tc.in, sites, served); got != tc.want {
			t.Errorf("nameSites(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
