package kubernetes_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/cli"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
	_ "github.com/conduitproxy/conduit/modules/bundle/full"
	"github.com/conduitproxy/conduit/modules/kubernetes"
	"github.com/conduitproxy/conduit/modules/kubernetes/kubetest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// eventually is how long a change may take to be served or reported (a fresh CRD's first
// watch, a loaded 2-core machine).
const eventually = 45 * time.Second

// manifest reads a file of contrib/k8s, the files users apply.
func manifest(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "k8s", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startCluster runs the control plane with the ConduitSite CRD installed from
// contrib/k8s/conduitsite-crd.yaml.
func startCluster(t *testing.T) *kubetest.Cluster {
	c := kubetest.Start(t)
	if err := c.Apply(manifest(t, "conduitsite-crd.yaml"), kubetest.ApplyOptions{}); err != nil {
		t.Fatalf("the CRD manifest was refused: %v", err)
	}
	return c
}

// upstream is a real HTTP server answering its name.
func upstream(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// conduit is a Conduit serving ConduitSites, run the way `conduit --kubernetes-namespace`
// runs: the source's first document, then reloads through server.Reload on each change.
type conduit struct {
	*server.Server
	src *kubernetes.Source
	log *testtool.LogBuffer
}

// startConduit serves the ConduitSites of ns with cfg's identity; it fails the test when the
// first configuration does not start.
func startConduit(t *testing.T, cfg *rest.Config, ns string, tune func(*kubernetes.Options)) *conduit {
	t.Helper()
	logs := &testtool.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	opts := kubernetes.Options{Config: cfg, Namespace: ns, Logger: logger, Debounce: 50 * time.Millisecond, RetryPeriod: 500 * time.Millisecond, LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second}
	if tune != nil {
		tune(&opts)
	}
	src, err := kubernetes.Open(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := server.New(server.Options{Listen: servertest.Ephemeral, Logger: logger, Source: src})
	g, d, err := server.LoadSource(ctx, src, srv.BuildOptions())
	if err == nil && d.HasErrors() {
		err = d.Err()
	}
	if err == nil {
		err = srv.Start(g)
	}
	server.Report(src, d, err)
	if err != nil {
		cancel()
		t.Fatalf("first configuration: %v\n%s", err, logs.String())
	}
	if err := src.Watch(ctx, func() { _, _ = srv.Reload(ctx) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		src.Close()
		cancel()
		if t.Failed() {
			t.Logf("conduit log:\n%s", logs.String())
		}
	})
	return &conduit{Server: srv, src: src, log: logs}
}

// site is a ConduitSite object.
func site(ns, name, spec string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(fmt.Appendf(nil, `{"apiVersion":"conduit.io/v1","kind":"ConduitSite","metadata":{"name":%q,"namespace":%q},"spec":%s}`, name, ns, spec)); err != nil {
		panic(err)
	}
	return u
}

func create(t *testing.T, c *kubetest.Cluster, u *unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Dynamic.Resource(kubernetes.Resource).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// patchSpec replaces a ConduitSite's spec (a JSON merge patch with the spec set to null
// first would lose nothing here: the tests give whole specs).
func patchSpec(t *testing.T, c *kubetest.Cluster, ns, name, spec string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := fmt.Appendf(nil, `[{"op":"replace","path":"/spec","value":%s}]`, spec)
	if _, err := c.Dynamic.Resource(kubernetes.Resource).Namespace(ns).Patch(ctx, name, types.JSONPatchType, body, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, c *kubetest.Cluster, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Dynamic.Resource(kubernetes.Resource).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// status reads a ConduitSite's status.
func status(t *testing.T, c *kubetest.Cluster, ns, name string) (ready, found bool, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := c.Dynamic.Resource(kubernetes.Resource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready, found, _ = unstructured.NestedBool(u.Object, "status", "ready")
	message, _, _ = unstructured.NestedString(u.Object, "status", "message")
	return ready, found, message
}

// waitStatus waits until ns/name's status has ready and a message containing want.
func waitStatus(t *testing.T, c *kubetest.Cluster, ns, name string, ready bool, want string) string {
	t.Helper()
	deadline := time.Now().Add(eventually)
	var msg string
	var r, found bool
	for time.Now().Before(deadline) {
		if r, found, msg = status(t, c, ns, name); found && r == ready && strings.Contains(msg, want) {
			return msg
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("status of %s/%s: ready=%v (set: %v) %q; want ready=%v and %q", ns, name, r, found, msg, ready, want)
	return ""
}

// get sends one request to the conduit's port 8080 with Host host.
func (cd *conduit) get(t *testing.T, host string) servertest.Reply {
	t.Helper()
	return servertest.Get(t, cd.url(8080), "Host", host)
}

func (cd *conduit) url(port int) string { return "http://" + cd.Addr(port).String() }

// waitBody waits until a request with Host host is answered 200 with body want.
func (cd *conduit) waitBody(t *testing.T, host, want string) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	var last servertest.Reply
	for time.Now().Before(deadline) {
		if last = cd.get(t, host); last.Status == http.StatusOK && last.Body == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("Host %s: %d %q; want 200 %q", host, last.Status, last.Body, want)
}

// TestConduitSites runs Conduit against a real kube-apiserver and etcd through the life of
// ConduitSite resources: served at start, added, patched under load, invalid, refused at
// the trust boundary, a cold-field change, deleted.
func TestConduitSites(t *testing.T) {
	c := startCluster(t)
	ns := "shop"
	c.Namespace(t, ns)
	one, two, three := upstream(t, "one"), upstream(t, "two"), upstream(t, "three")
	create(t, c, site(ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q}`, one.URL)))
	cd := startConduit(t, c.Admin, ns, nil)

	t.Run("served at start, status ready", func(t *testing.T) {
		if r := cd.get(t, "anything.test"); r.Status != http.StatusOK || r.Body != "one" {
			t.Fatalf("got %d %q", r.Status, r.Body)
		}
		waitStatus(t, c, ns, "web", true, "serving")
	})

	t.Run("create adds a site without a restart", func(t *testing.T) {
		create(t, c, site(ns, "api", fmt.Sprintf(`{"port":8080,"host":"api.test","proxy":%q}`, two.URL)))
		cd.waitBody(t, "api.test", "two")
		if r := cd.get(t, "www.test"); r.Body != "one" {
			t.Fatalf("the other site: %d %q", r.Status, r.Body)
		}
		waitStatus(t, c, ns, "api", true, "serving")
	})

	t.Run("patch is re-served without a dropped request under load", func(t *testing.T) {
		var sawThree atomic.Bool
		client := &http.Client{Timeout: 10 * time.Second}
		stop := servertest.Load(4, func() error {
			req, _ := http.NewRequest(http.MethodGet, cd.url(8080)+"/", nil)
			req.Host = "www.test"
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || (string(b) != "one" && string(b) != "three") {
				return fmt.Errorf("%d %q", resp.StatusCode, b)
			}
			if string(b) == "three" {
				sawThree.Store(true)
			}
			return nil
		})
		time.Sleep(300 * time.Millisecond)
		patchSpec(t, c, ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q}`, three.URL))
		deadline := time.Now().Add(eventually)
		for !sawThree.Load() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		res := stop()
		if !sawThree.Load() {
			t.Fatal("the patched upstream was never served")
		}
		if res.Failed != 0 {
			t.Fatalf("%d of %d requests failed during the reload; first: %v", res.Failed, res.Sent, res.First)
		}
		t.Logf("%d requests, none dropped", res.Sent)
		cd.waitBody(t, "www.test", "three")
	})

	t.Run("invalid update keeps the running generation and says why", func(t *testing.T) {
		patchSpec(t, c, ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q,"responseTime":{"digits":9}}`, one.URL))
		msg := waitStatus(t, c, ns, "web", false, "error at spec.responseTime.digits: must be between 0 and 6")
		t.Logf("status message: %s", msg)
		if r := cd.get(t, "www.test"); r.Body != "three" {
			t.Fatalf("the running generation changed: %d %q", r.Status, r.Body)
		}
		// The unchanged resource stays ready: it is still served as it is.
		if ready, _, m := status(t, c, ns, "api"); !ready {
			t.Fatalf("api: not ready: %q", m)
		}
		patchSpec(t, c, ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q}`, three.URL))
		waitStatus(t, c, ns, "web", true, "serving")
	})

	t.Run("a site naming host files is refused", func(t *testing.T) {
		create(t, c, site(ns, "files", `{"port":8080,"host":"files.test","static":"/etc","routes":[{"match":{"path":"/x"},"static":"/root"}],"tls":{"cert":"/etc/ssl/private/k.pem"}}`))
		msg := waitStatus(t, c, ns, "files", false, "refused: a ConduitSite may not name files on Conduit's host")
		for _, k := range []string{"spec.static", "spec.routes[0].static", "spec.tls.cert"} {
			if !strings.Contains(msg, k) {
				t.Errorf("status %q does not name %s", msg, k)
			}
		}
		if r := cd.get(t, "files.test"); r.Body != "three" {
			t.Fatalf("files.test: %d %q (served by the catch-all site before and after)", r.Status, r.Body)
		}
		remove(t, c, ns, "files")
	})

	t.Run("a cold-field change is refused", func(t *testing.T) {
		create(t, c, site(ns, "other-port", fmt.Sprintf(`{"port":9090,"proxy":%q}`, one.URL)))
		msg := waitStatus(t, c, ns, "other-port", false, "cold fields changed — restart required: ConduitSite shop/other-port spec.port")
		t.Logf("status message: %s", msg)
		if cd.Addr(9090) != nil {
			t.Fatal("a listener for port 9090 was opened")
		}
		remove(t, c, ns, "other-port")
		waitStatus(t, c, ns, "web", true, "serving")
	})

	t.Run("delete removes the site", func(t *testing.T) {
		remove(t, c, ns, "api")
		cd.waitBody(t, "api.test", "three")
	})

	t.Run("no status loop", func(t *testing.T) {
		before := cd.src.StatusWrites()
		time.Sleep(2 * time.Second)
		if n := cd.src.StatusWrites() - before; n != 0 {
			t.Fatalf("%d status writes while nothing changed", n)
		}
	})
}

// TestAllNamespaces: with '*', the ConduitSites of every namespace are one configuration
// (and a spec's $VAR comes from Conduit's environment).
func TestAllNamespaces(t *testing.T) {
	c := startCluster(t)
	a, b := upstream(t, "a"), upstream(t, "b")
	for _, ns := range []string{"team-a", "team-b"} {
		c.Namespace(t, ns)
	}
	create(t, c, site("team-a", "site", fmt.Sprintf(`{"port":8080,"host":"a.test","proxy":%q}`, a.URL)))
	// $VAR references resolve from Conduit's environment, as in a file.
	env := func(k string) (string, bool) {
		if k == "TEAM_B_UPSTREAM" {
			return b.URL, true
		}
		return "", false
	}
	cd := startConduit(t, c.Admin, kubernetes.AllNamespaces, func(o *kubernetes.Options) {
		o.LookupEnv = env
		o.Resync = 2 * time.Second
	})
	cd.waitBody(t, "a.test", "a")
	create(t, c, site("team-b", "site", `{"port":8080,"host":"b.test","proxy":"$TEAM_B_UPSTREAM"}`))
	cd.waitBody(t, "b.test", "b")
	cd.waitBody(t, "a.test", "a")
	waitStatus(t, c, "team-b", "site", true, "serving")
	waitStatus(t, c, "team-a", "site", true, "serving")

	// A resync (every 2 s here) rebuilds once for all resources, and writes no status.
	reloads := func() int { return strings.Count(cd.log.String(), "config reloaded") }
	before, writes := reloads(), cd.src.StatusWrites()
	time.Sleep(5 * time.Second)
	if n := reloads() - before; n < 1 || n > 3 {
		t.Fatalf("%d reloads in 5 s of 2 s resyncs with 2 resources; want 1 to 3 (one per resync)", n)
	}
	if w := cd.src.StatusWrites() - writes; w != 0 {
		t.Fatalf("%d status writes on resync", w)
	}
}

// TestReplicasConverge: two replicas serve the same generation and only the Lease holder
// writes statuses.
func TestReplicasConverge(t *testing.T) {
	c := startCluster(t)
	ns := "replicas"
	c.Namespace(t, ns)
	up := upstream(t, "up")
	create(t, c, site(ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q}`, up.URL)))
	r1 := startConduit(t, c.Admin, ns, func(o *kubernetes.Options) { o.Identity = "replica-1" })
	r2 := startConduit(t, c.Admin, ns, func(o *kubernetes.Options) { o.Identity = "replica-2" })
	waitStatus(t, c, ns, "web", true, "serving")
	patchSpec(t, c, ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q,"responseTime":{"digits":9}}`, up.URL))
	waitStatus(t, c, ns, "web", false, "spec.responseTime.digits")
	patchSpec(t, c, ns, "web", fmt.Sprintf(`{"port":8080,"host":"web.test","proxy":%q}`, up.URL))
	waitStatus(t, c, ns, "web", true, "serving")
	r1.waitBody(t, "web.test", "up")
	r2.waitBody(t, "web.test", "up")
	deadline := time.Now().Add(eventually)
	for r1.src.IsLeader() == r2.src.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if r1.src.IsLeader() == r2.src.IsLeader() {
		t.Fatalf("leaders: replica-1 %v, replica-2 %v; want exactly one", r1.src.IsLeader(), r2.src.IsLeader())
	}
	leader, follower := r1, r2
	if r2.src.IsLeader() {
		leader, follower = r2, r1
	}
	if follower.src.StatusWrites() != 0 || leader.src.StatusWrites() == 0 {
		t.Fatalf("status writes: leader %d, follower %d; want only the leader's", leader.src.StatusWrites(), follower.src.StatusWrites())
	}
	g1, g2 := r1.Current().Doc, r2.Current().Doc
	if fmt.Sprint(g1.Sites) != fmt.Sprint(g2.Sites) {
		t.Fatalf("the replicas serve different configurations:\n%v\n%v", g1.Sites, g2.Sites)
	}

	// The leader stops (releasing the Lease): the other replica takes over the statuses.
	leader.src.Close()
	deadline = time.Now().Add(eventually)
	for !follower.src.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !follower.src.IsLeader() {
		t.Fatal("the remaining replica did not take the Lease")
	}
	patchSpec(t, c, ns, "web", fmt.Sprintf(`{"port":8080,"host":"web.test","proxy":%q,"responseTime":{"digits":9}}`, up.URL))
	waitStatus(t, c, ns, "web", false, "spec.responseTime.digits")
	if follower.src.StatusWrites() == 0 {
		t.Fatal("the new leader wrote no status")
	}
}

// TestCommandLine runs `conduit --kubernetes-namespace` itself: a failing first
// configuration exits 1 and marks the resource, and an identity without the RBAC of
// contrib/k8s/rbac.yaml is told which permissions it lacks; with them it starts.
func TestCommandLine(t *testing.T) {
	c := startCluster(t)

	run := func(t *testing.T, kubeconfig string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb, Dir: t.TempDir(), LookupEnv: func(k string) (string, bool) {
			if k == "KUBECONFIG" {
				return kubeconfig, true
			}
			return "", false
		}}
		code := cli.Run(env, args)
		return code, out.String() + errb.String()
	}

	t.Run("invalid first configuration exits 1", func(t *testing.T) {
		ns := "broken"
		c.Namespace(t, ns)
		create(t, c, site(ns, "bad", `{"port":8080,"responseTime":{"digits":9}}`))
		code, out := run(t, c.Kubeconfig(t, "conduit-test-admin-token"), "--kubernetes-namespace", ns)
		if code != 1 || !strings.Contains(out, "sites[0].responseTime.digits") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
		if ready, found, msg := status(t, c, ns, "bad"); ready || !found || !strings.Contains(msg, "error at spec.responseTime.digits") {
			t.Fatalf("status ready=%v found=%v %q", ready, found, msg)
		}
	})

	t.Run("refused first configuration exits 1", func(t *testing.T) {
		ns := "refused"
		c.Namespace(t, ns)
		create(t, c, site(ns, "files", `{"port":8080,"fallback":{"file":"/etc/shadow"}}`))
		code, out := run(t, c.Kubeconfig(t, "conduit-test-admin-token"), "--kubernetes-namespace", ns)
		if code != 1 || !strings.Contains(out, "spec.fallback.file") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
		waitStatus(t, c, ns, "files", false, "spec.fallback.file")
	})

	t.Run("without RBAC it names the missing permissions", func(t *testing.T) {
		ns := "norbac"
		c.Namespace(t, ns)
		token := c.Token(t, ns, "conduit")
		code, out := run(t, c.Kubeconfig(t, token), "--kubernetes-namespace", ns)
		for _, want := range []string{"lacks RBAC permissions", "list conduitsites.conduit.io in namespace norbac", "watch conduitsites.conduit.io in namespace norbac", "patch conduitsites/status.conduit.io in namespace norbac", "create leases.coordination.k8s.io in namespace norbac", "contrib/k8s/rbac.yaml"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if code != 1 {
			t.Errorf("exit %d", code)
		}
		t.Logf("output:\n%s", out)
	})

	t.Run("with the Role of rbac.yaml it serves", func(t *testing.T) {
		ns := "withrbac"
		c.Namespace(t, ns)
		if err := c.Apply(manifest(t, "rbac.yaml"), kubetest.ApplyOptions{Namespace: ns}); err != nil {
			t.Fatal(err)
		}
		up := upstream(t, "rbac")
		create(t, c, site(ns, "web", fmt.Sprintf(`{"port":8080,"proxy":%q}`, up.URL)))
		token := c.Token(t, ns, "conduit")
		kubeconfig := c.Kubeconfig(t, token)
		cfg, err := kubernetes.RESTConfig(func(k string) (string, bool) { return kubeconfig, k == "KUBECONFIG" })
		if err != nil {
			t.Fatal(err)
		}
		cd := startConduit(t, cfg, ns, nil)
		cd.waitBody(t, "x.test", "rbac")
		waitStatus(t, c, ns, "web", true, "serving")
	})

	t.Run("the CRD not installed", func(t *testing.T) {
		bare := kubetest.Start(t)
		bare.Namespace(t, "x")
		code, out := run(t, bare.Kubeconfig(t, "conduit-test-admin-token"), "--kubernetes-namespace", "x")
		if code != 1 || !strings.Contains(out, "apply contrib/k8s/conduitsite-crd.yaml") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
	})

	t.Run("flag errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--kubernetes-namespace", "Bad_NS"}, `namespace "Bad_NS"`},
			{[]string{"--kubernetes-namespace", "a", "-c", "conduit.yaml"}, "--kubernetes-namespace replaces the config file"},
		} {
			code, out := run(t, c.Kubeconfig(t, "conduit-test-admin-token"), tc.args...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("%v: exit %d, output %q; want %q", tc.args, code, out, tc.want)
			}
		}
	})
}

// TestManifestsApply: every manifest of contrib/k8s parses and is accepted by the API
// server (a server-side dry run, as `kubectl apply --dry-run=server` does).
func TestManifestsApply(t *testing.T) {
	c := startCluster(t)
	c.Namespace(t, "conduit")
	files, err := filepath.Glob(filepath.Join("..", "..", "contrib", "k8s", "*.yaml"))
	if err != nil || len(files) < 7 {
		t.Fatalf("found %d manifests (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := kubetest.Decode(b)
			if err != nil || len(objs) == 0 {
				t.Fatalf("parse: %d objects, %v", len(objs), err)
			}
			if err := c.Apply(b, kubetest.ApplyOptions{DryRun: true}); err != nil {
				t.Fatalf("server-side dry run: %v", err)
			}
		})
	}
}
