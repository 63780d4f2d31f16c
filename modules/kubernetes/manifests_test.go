package kubernetes_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/modules/kubernetes"
	"github.com/conduitproxy/conduit/modules/kubernetes/kubetest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestManifestConfigsValidate: the Conduit configurations inside contrib/k8s (the
// ConfigMap's conduit.yaml, every ConduitSite's spec) build without an error or a warning,
// and no ConduitSite crosses the trust boundary.
func TestManifestConfigsValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "contrib", "k8s", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		if k == "ADMIN_TOKEN" {
			return "manifest-test-admin-token-0123456789", true
		}
		return "", false
	}
	build := func(t *testing.T, what string, data []byte, format config.Format) {
		doc, err := config.Parse(data, format, env)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		g, d := server.Build(context.Background(), doc, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
		for _, x := range append(d.Errors(), d.Warnings()...) {
			t.Errorf("%s: %s", what, x)
		}
		if g != nil {
			g.Stop(context.Background())
		}
	}
	configs, sites := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := kubetest.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			what := filepath.Base(f) + " " + o.GetKind() + " " + o.GetName()
			switch o.GetKind() {
			case "ConfigMap":
				if text, ok, _ := unstructured.NestedString(o.Object, "data", "conduit.yaml"); ok {
					configs++
					build(t, what, []byte(text), config.FormatYAML)
				}
			case "ConduitSite":
				sites++
				spec, _, _ := unstructured.NestedMap(o.Object, "spec")
				if keys := kubernetes.HostFileKeys(spec); len(keys) > 0 {
					t.Errorf("%s names host files: %v", what, keys)
				}
				data, _ := json.Marshal(map[string]any{"sites": []any{spec}})
				build(t, what, data, config.FormatJSON)
			}
		}
	}
	if configs == 0 || sites == 0 {
		t.Fatalf("found %d ConfigMap configs and %d ConduitSites in %d files", configs, sites, len(files))
	}
}
