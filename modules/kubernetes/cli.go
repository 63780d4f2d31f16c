package kubernetes

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/cli"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func init() {
	core.Register(core.Module{
		ID:          "config.sources.kubernetes",
		Feature:     "kubernetes",
		Description: "ConduitSite CRD mode: serve the ConduitSite resources of a namespace (--kubernetes-namespace)",
	})
	cli.RegisterSource(cli.SourceFlag{
		Name:  "kubernetes-namespace",
		Usage: "serve the ConduitSite resources of namespace NS ('*': all namespaces) instead of a config file; the cluster comes from $KUBECONFIG or the in-cluster service account",
		Open:  openFromCLI,
	})
}

// openFromCLI opens the source for `conduit --kubernetes-namespace NS`.
func openFromCLI(sc cli.SourceContext, ns string) (core.ConfigSource, error) {
	if err := ValidNamespace(ns); err != nil {
		return nil, err
	}
	cfg, err := RESTConfig(sc.Env.LookupEnv)
	if err != nil {
		return nil, err
	}
	// client-go logs through klog; send it to the process logger.
	klog.SetSlogLogger(sc.Logger)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sc.Done
		cancel()
	}()
	src, err := Open(ctx, Options{Config: cfg, Namespace: ns, Logger: sc.Logger, LookupEnv: sc.Env.LookupEnv})
	if err != nil {
		cancel()
		return nil, err
	}
	return src, nil
}

// RESTConfig returns the cluster connection: the kubeconfig files $KUBECONFIG names (a
// list, as kubectl reads it) when it is set, else the in-cluster service account (its
// token and CA, and $KUBERNETES_SERVICE_HOST/PORT).
func RESTConfig(lookup func(string) (string, bool)) (*rest.Config, error) {
	if p, ok := lookup("KUBECONFIG"); ok && p != "" {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(p)}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG=%s: %w", p, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster to connect to: KUBECONFIG is not set, and not in a pod with a service account: %w", err)
	}
	return cfg, nil
}
