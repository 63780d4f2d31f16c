package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cconfig "github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"

	_ "github.com/conduitproxy/conduit/modules/bundle/full"
)

// TestVariantConfigsValidate renders every Conduit row's config (with the h2c and TLS
// listeners, and HTTP/3 on the TLS one as the h3 mode asks) and builds it with the full bundle: no error, no warning that a key was
// ignored, and one site per listener.
func TestVariantConfigsValidate(t *testing.T) {
	dir := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, both, err := writeCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := tmplData{
		Dir: dir, Listen: "127.0.0.1:18080", Port: 18080, Upstream: "127.0.0.1:19000", Body: "x",
		H2CListen: "127.0.0.1:18081", H2CPort: 18081, TLSListen: "127.0.0.1:18443", TLSPort: 18443, H3: true,
		Upstreams:     []string{"127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"},
		CacheUpstream: "127.0.0.1:19004",
		Cert:          cert, Key: key, CertKey: both,
		JWTSecret: strings.Repeat("s", 43), JWKSURL: "http://127.0.0.1:19005/jwks.json",
		RedisURL: "redis://127.0.0.1:19006/0", AdminAddr: "127.0.0.1:19007",
		WasmGuests: wasmGuests(filepath.Join("..", "..")),
		Repo:       repo,
		AuthzGRPC:  "127.0.0.1:19008", AuthzHTTP: "127.0.0.1:19009",
	}
	for _, v := range conduitVariants {
		t.Run(v.Name, func(t *testing.T) {
			path, err := renderConduitConfig(v, d, filepath.Join(dir, v.Name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			doc, err := cconfig.LoadFile(path, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			g, diag := server.Build(context.Background(), doc, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
			for _, e := range diag.Errors() {
				t.Errorf("error: %s", e.String())
			}
			for _, w := range diag.Warnings() {
				if s := w.String(); strings.Contains(s, "not compiled") || strings.Contains(s, "unknown key") || strings.Contains(s, "lets every request pass") {
					t.Errorf("config not taken as written: %s", s)
				}
			}
			if g == nil {
				return
			}
			defer g.Stop(context.Background())
			switch {
			case v.H1Only && len(g.Sites) != 1:
				t.Errorf("%d sites, want 1 (HTTP/1.1 only)", len(g.Sites))
			case !v.H1Only && len(g.Sites) != 3:
				t.Errorf("%d sites, want 3 (HTTP/1.1, h2c, TLS)", len(g.Sites))
			}
		})
	}
}

// TestPeerAliases checks that the -peers aliases expand to known rows without repeats.
func TestPeerAliases(t *testing.T) {
	got := expandPeers([]string{"peers", "conduit", "variants"})
	if got[0] != "direct" || got[1] != "conduit" || len(got) != 5+len(conduitVariants)-2 || slices.Contains(got, "conduit-alt") {
		t.Errorf("expandPeers = %v", got)
	}
	for _, n := range expandPeers([]string{"all"}) {
		if _, ok := findTarget(n); !ok {
			t.Errorf("alias row %q is unknown", n)
		}
	}
}
