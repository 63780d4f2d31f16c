// Package kubetest runs a real Kubernetes control plane for tests: etcd and kube-apiserver
// (built by install-kube.sh into $HOME/.cache/conduit-tools/bin), on free loopback ports,
// stopped by PID when the test ends. It applies manifests the way `kubectl apply` would
// (server-side, optionally as a dry run), issues service account tokens and writes
// kubeconfig files, so tests run Conduit against the API server exactly as users do.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// install is the script that builds the binaries, for skip messages.
const install = "modules/kubernetes/kubetest/install-kube.sh"

// adminToken is the static bearer token of the test's cluster admin (group system:masters).
const adminToken = "conduit-test-admin-token"

// startTimeout bounds the wait for the API server's /readyz (a loaded 2-core machine can
// take many seconds to start it).
const startTimeout = 120 * time.Second

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Host is the API server's URL.
	Host string
	// CAFile is the API server's self-signed certificate (its own CA).
	CAFile string
	// Admin is a client configuration with cluster-admin rights.
	Admin *rest.Config
	// Dynamic is a dynamic client for Admin.
	Dynamic dynamic.Interface
	dir     string
	mapper  meta.ResettableRESTMapper
}

// Start runs etcd and kube-apiserver for t and stops them when t ends. A missing binary
// skips t (fails it under CI=true).
func Start(t testing.TB) *Cluster {
	t.Helper()
	etcdBin := testtool.Find(t, "etcd", install)
	apiBin := testtool.Find(t, "kube-apiserver", install)
	dir := t.TempDir()

	clientPort, peerPort := testtool.FreePort(t), testtool.FreePort(t)
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	run(t, dir, "etcd", etcdBin,
		"--name", "t", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "t="+peerURL, "--unsafe-no-fsync")

	saKey := filepath.Join(dir, "sa.key")
	saPub := filepath.Join(dir, "sa.pub")
	writeServiceAccountKeys(t, saKey, saPub)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+`,admin,1,"system:masters"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testtool.FreePort(t)
	certDir := filepath.Join(dir, "certs")
	run(t, dir, "kube-apiserver", apiBin,
		"--etcd-servers", clientURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port), "--cert-dir", certDir,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.0.0.0/24", "--token-auth-file", tokens,
		"--authorization-mode", "RBAC", "--disable-admission-plugins", "ServiceAccount")

	c := &Cluster{Host: "https://127.0.0.1:" + strconv.Itoa(port), CAFile: filepath.Join(certDir, "apiserver.crt"), dir: dir}
	c.waitReady(t)
	c.Admin = c.ConfigFor(adminToken)
	var err error
	if c.Dynamic, err = dynamic.NewForConfig(c.Admin); err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return c
}

// run starts a process logging to dir/name.log and stops it (SIGTERM, then SIGKILL after
// 5 s) when t ends; on failure the log's tail is printed.
func run(t testing.TB, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s log (tail):\n%s", name, b)
			}
		}
	})
}

// writeServiceAccountKeys writes the RSA key pair the API server signs tokens with.
func writeServiceAccountKeys(t testing.TB, keyPath, pubPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitReady polls /readyz until the API server answers ok.
func (c *Cluster) waitReady(t testing.TB) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(startTimeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, c.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(c.CAFile); err == nil {
					return
				}
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready within %s: %s", startTimeout, last)
}

// ConfigFor is a client configuration that authenticates with token.
func (c *Cluster) ConfigFor(token string) *rest.Config {
	return &rest.Config{Host: c.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}}
}

// Kubeconfig writes a kubeconfig file for token (the form $KUBECONFIG names) and returns
// its path.
func (c *Cluster) Kubeconfig(t testing.TB, token string) string {
	t.Helper()
	f, err := os.CreateTemp(c.dir, "kubeconfig-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: test
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`, c.Host, c.CAFile, token)
	return f.Name()
}

// Namespace creates namespace ns.
func (c *Cluster) Namespace(t testing.TB, ns string) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Namespace, when set, replaces the namespace of every namespaced object and of every
	// ServiceAccount subject of a (Cluster)RoleBinding.
	Namespace string
	// DryRun asks the API server to validate and admit each object without storing it
	// (`kubectl apply --dry-run=server`).
	DryRun bool
}

// Apply creates every object of a multi-document YAML manifest, in order, and returns the
// first error (with the object's kind and name). The CRDs it creates are established
// before it returns.
func (c *Cluster) Apply(manifest []byte, o ApplyOptions) error {
	objs, err := Decode(manifest)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if err := c.applyOne(obj, o); err != nil {
			return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

// Decode splits a multi-document YAML manifest into objects (empty documents skipped).
func Decode(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// applyOne creates one object (or, when it exists, replaces it).
func (c *Cluster) applyOne(obj *unstructured.Unstructured, o ApplyOptions) error {
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.mapper.Reset()
		if mapping, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return err
		}
	}
	var ri dynamic.ResourceInterface = c.Dynamic.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if o.Namespace != "" {
			obj.SetNamespace(o.Namespace)
		}
		ns := obj.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		ri = c.Dynamic.Resource(mapping.Resource).Namespace(ns)
	}
	if o.Namespace != "" && strings.HasSuffix(gvk.Kind, "RoleBinding") {
		subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" {
				m["namespace"] = o.Namespace
			}
		}
		_ = unstructured.SetNestedSlice(obj.Object, subjects, "subjects")
	}
	var dry []string
	if o.DryRun {
		dry = []string{metav1.DryRunAll}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = ri.Create(ctx, obj, metav1.CreateOptions{DryRun: dry, FieldValidation: "Strict"})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = ri.Update(ctx, obj, metav1.UpdateOptions{DryRun: dry, FieldValidation: "Strict"})
	}
	if err != nil || o.DryRun || gvk.Kind != "CustomResourceDefinition" {
		return err
	}
	return c.waitEstablished(ctx, mapping.Resource, obj.GetName())
}

// waitEstablished waits for a CRD's Established condition and resets the mapper so its
// resources resolve.
func (c *Cluster) waitEstablished(ctx context.Context, crds schema.GroupVersionResource, name string) error {
	for {
		cur, err := c.Dynamic.Resource(crds).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		for _, cd := range conds {
			if m, ok := cd.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				c.mapper.Reset()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not established: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Token returns a token of service account ns/name (created when missing), from the
// API server's TokenRequest endpoint.
func (c *Cluster) Token(t testing.TB, ns, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sas := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}).Namespace(ns)
	sa := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": name, "namespace": ns}}}
	if _, err := sas.Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	req := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": map[string]any{"name": name}, "spec": map[string]any{"expirationSeconds": int64(3600)}}}
	out, err := sas.Create(ctx, req, metav1.CreateOptions{}, "token")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := unstructured.NestedString(out.Object, "status", "token")
	if tok == "" {
		t.Fatal("TokenRequest returned no token")
	}
	return tok
}
