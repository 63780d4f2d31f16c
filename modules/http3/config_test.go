package http3

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
)

func TestConfigShapes(t *testing.T) {
	obj := func(kv ...any) map[string]config.Node {
		m := map[string]config.Node{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	def := defaults()
	for _, tc := range []struct {
		name    string
		node    config.Node
		want    Config
		errPath string
	}{
		{"true", true, def, ""},
		{"false", false, Config{MaxStreams: DefaultMaxStreams, IdleTimeout: DefaultIdleTimeout, Advertise: true}, ""},
		{"empty object", obj(), def, ""},
		{"enabled false", obj("enabled", false), Config{MaxStreams: DefaultMaxStreams, IdleTimeout: DefaultIdleTimeout, Advertise: true}, ""},
		{"every key", obj("enabled", true, "maxStreams", 250.0, "idleTimeoutSecs", 90.0, "advertise", false),
			Config{Enabled: true, MaxStreams: 250, IdleTimeout: 90 * time.Second}, ""},
		{"zero streams", obj("maxStreams", 0.0), Config{}, "s.http3.maxStreams"},
		{"too many streams", obj("maxStreams", 10001.0), Config{}, "s.http3.maxStreams"},
		{"zero idle", obj("idleTimeoutSecs", 0.0), Config{}, "s.http3.idleTimeoutSecs"},
		{"idle too long", obj("idleTimeoutSecs", 3601.0), Config{}, "s.http3.idleTimeoutSecs"},
		{"negative idle", obj("idleTimeoutSecs", -5.0), Config{}, "s.http3.idleTimeoutSecs"},
		{"string", "yes", Config{}, "s.http3"},
		{"wrong type inside", obj("advertise", "no"), Config{}, "s.http3.advertise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			d := &config.Diagnostics{}
			config.Decode(tc.node, "s.http3", &c, d)
			if tc.errPath != "" {
				if e := d.Errors(); len(e) != 1 || e[0].Path != tc.errPath {
					t.Fatalf("errors %v; want one at %s", e, tc.errPath)
				}
				return
			}
			if d.HasErrors() || c != tc.want {
				t.Fatalf("got %+v (%v), want %+v", c, d.Errors(), tc.want)
			}
		})
	}
}

func FuzzConfig(f *testing.F) {
	f.Add(100.0, 30.0)
	f.Add(-1.0, 1e300)
	f.Add(0.5, 0.0)
	f.Fuzz(func(t *testing.T, streams, idle float64) {
		var c Config
		d := &config.Diagnostics{}
		config.Decode(map[string]config.Node{"maxStreams": streams, "idleTimeoutSecs": idle}, "h", &c, d)
		if c.MaxStreams < 1 || c.MaxStreams > maxStreamsLimit || c.IdleTimeout < time.Second || c.IdleTimeout > maxIdleSecs*time.Second {
			t.Fatalf("out of range: %+v", c)
		}
	})
}

func TestValidate(t *testing.T) {
	ca := tlstest.NewCA(t, "validate CA")
	cert, key := ca.Server(t, "a.test", "b.test").Write(t, t.TempDir(), "site")
	tlsBlock := fmt.Sprintf("{cert: %q, key: %q}", cert, key)
	for _, tc := range []struct {
		name, src string
		errPath   string // "" when the config is valid
		msg       string
	}{
		{name: "plain site", src: "port: 8080\nhttp3: true\nproxy: http://127.0.0.1:9\n",
			errPath: "http3", msg: "needs a TLS site"},
		{name: "plain site in a list", src: "sites:\n  - port: 8080\n    http3: {maxStreams: 10}\n",
			errPath: "sites[0].http3", msg: "needs a TLS site"},
		{name: "plain site turned off", src: "port: 8080\nhttp3: false\n"},
		{name: "global default skips plain sites", src: "global: {http3: true}\nsites:\n  - port: 8080\n  - port: 8443\n    tls: " + tlsBlock + "\n"},
		{name: "global default with a bad value", src: "global: {http3: {maxStreams: 0}}\nsites:\n  - port: 8080\n",
			errPath: "global.http3.maxStreams", msg: "between 1 and"},
		{name: "TLS site", src: "port: 8443\ntls: " + tlsBlock + "\nhttp3: true\n"},
		{name: "TLS 1.2 only", src: "port: 8443\ntls: {cert: " + fmt.Sprintf("%q", cert) + ", key: " + fmt.Sprintf("%q", key) + ", versions: [TLSv1.2]}\nhttp3: true\n",
			errPath: "tls.versions", msg: "excludes TLSv1.3"},
		{name: "a site of the port without it", src: "sites:\n  - {host: a.test, port: 8443, tls: " + tlsBlock + ", http3: true}\n  - {host: b.test, port: 8443, tls: " + tlsBlock + "}\n",
			errPath: "sites[1]", msg: "must serve it too"},
		{name: "a site of the port turns it off", src: "global: {http3: true}\nsites:\n  - {host: a.test, port: 8443, tls: " + tlsBlock + "}\n  - {host: b.test, port: 8443, tls: " + tlsBlock + ", http3: false}\n",
			errPath: "sites[1]", msg: "must serve it too"},
		{name: "QUIC settings differ on a port", src: "sites:\n  - {host: a.test, port: 8443, tls: " + tlsBlock + ", http3: true}\n  - {host: b.test, port: 8443, tls: " + tlsBlock + ", http3: {maxStreams: 5}}\n",
			errPath: "sites[1].http3", msg: "QUIC settings are per port"},
		{name: "a site's settings differ from the global default on a port", src: "global: {http3: true}\nsites:\n  - {host: a.test, port: 8443, tls: " + tlsBlock + "}\n  - {host: b.test, port: 8443, tls: " + tlsBlock + ", http3: {idleTimeoutSecs: 5}}\n",
			errPath: "sites[1].http3", msg: "of sites[1] differ from global.http3 (for sites[0]) on port 8443"},
		{name: "the global default differs from a site's settings on a port", src: "global: {http3: true}\nsites:\n  - {host: a.test, port: 8443, tls: " + tlsBlock + ", http3: {maxStreams: 7}}\n  - {host: b.test, port: 8443, tls: " + tlsBlock + "}\n",
			errPath: "global.http3", msg: "of sites[1] differ from sites[0].http3 on port 8443"},
		{name: "advertise may differ on a port", src: "sites:\n  - {host: a.test, port: 8443, tls: " + tlsBlock + ", http3: true}\n  - {host: b.test, port: 8443, tls: " + tlsBlock + ", http3: {advertise: false}}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build(tc.src, config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			errs := d.Errors()
			if tc.errPath == "" {
				if len(errs) > 0 {
					t.Fatalf("errors %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Path != tc.errPath || !strings.Contains(errs[0].Message, tc.msg) {
				t.Fatalf("errors %v; want one at %s saying %q", errs, tc.errPath, tc.msg)
			}
		})
	}
}
