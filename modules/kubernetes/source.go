package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Resource is the ConduitSite resource: apiVersion conduit.io/v1, kind ConduitSite
// (contrib/k8s/conduitsite-crd.yaml).
var Resource = schema.GroupVersionResource{Group: "conduit.io", Version: "v1", Resource: "conduitsites"}

// AllNamespaces is the --kubernetes-namespace value that watches every namespace.
const AllNamespaces = "*"

// Defaults of Options.
const (
	DefaultResync    = 10 * time.Minute
	DefaultDebounce  = 200 * time.Millisecond
	DefaultLeaseName = "conduit-status"
	// callTimeout bounds every single API call the source makes (status patches, access
	// checks, the first list); watches are bounded by the informers' own timeouts.
	callTimeout = 10 * time.Second
	// syncTimeout bounds the wait for the informer's first complete list.
	syncTimeout = 30 * time.Second
	// maxMessage bounds a status message (a config with many errors stays readable).
	maxMessage = 2048
)

// Options configure a Source.
type Options struct {
	// Config is the cluster connection (RESTConfig reads $KUBECONFIG or the in-cluster
	// service account).
	Config *rest.Config
	// Namespace is the namespace whose ConduitSites are served; AllNamespaces watches all.
	Namespace string
	// Logger receives the source's logs; nil means slog.Default().
	Logger *slog.Logger
	// LookupEnv resolves $VAR references in specs; nil means os.LookupEnv (as for a file).
	LookupEnv func(string) (string, bool)
	// Resync is the informer's resync period: every Resync the source rebuilds once.
	// 0 means DefaultResync.
	Resync time.Duration
	// Debounce collapses a burst of events into one reload. 0 means DefaultDebounce.
	Debounce time.Duration
	// LeaseNamespace and LeaseName name the Lease replicas elect the status writer with.
	// The default namespace is Namespace, or $POD_NAMESPACE (else "default") for
	// AllNamespaces; the default name is DefaultLeaseName.
	LeaseNamespace, LeaseName string
	// Identity is this replica's name in the Lease; "" means the host name and a random
	// suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election; 0 means 15 s, 10 s
	// and 2 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Source is a core.ConfigSource that serves every ConduitSite resource in scope as one
// multi-site configuration. A client-go informer lists and watches the resources; each
// change is reported to the server (core.ConfigWatcher), which reloads through its usual
// path; the outcome of each build is written back to each resource's status by the replica
// that holds the Lease (core.ConfigReporter).
type Source struct {
	opts     Options
	log      *slog.Logger
	client   dynamic.Interface
	informer cache.SharedIndexInformer
	lister   cache.GenericLister
	ctx      context.Context
	cancel   context.CancelFunc

	events atomic.Uint64 // spec changes seen by the informer

	mu       sync.Mutex
	changed  func()
	timer    *time.Timer
	loaded   uint64                // events when Load last ran
	snapshot []site                // the resources of the last Load, in site order
	applied  map[string]int64      // metadata.generation of each resource now serving
	served   []site                // the resources now serving, in site order
	statuses map[string]siteStatus // the status each resource should have
	watching bool

	leader       atomic.Bool
	wake         chan struct{}
	statusWrites atomic.Int64 // status patches this replica sent
}

// site is one ConduitSite as Load read it.
type site struct {
	key        string // namespace/name
	namespace  string
	name       string
	generation int64
	spec       map[string]any
}

// siteStatus is what a resource's status subresource holds.
type siteStatus struct {
	Ready   bool   `json:"ready"`
	Message string `json:"message"`
}

var (
	_ core.ConfigSource   = (*Source)(nil)
	_ core.ConfigReporter = (*Source)(nil)
	_ core.ConfigWatcher  = (*Source)(nil)
)

// Open connects to the cluster, checks that this identity holds the permissions the source
// needs (naming each one missing), starts the informer and waits for its first complete
// list. The source stops when ctx ends.
func Open(ctx context.Context, opts Options) (*Source, error) {
	if err := ValidNamespace(opts.Namespace); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.LeaseName == "" {
		opts.LeaseName = DefaultLeaseName
	}
	if opts.LeaseNamespace == "" {
		opts.LeaseNamespace = opts.Namespace
		if opts.Namespace == AllNamespaces {
			opts.LeaseNamespace = "default"
			if ns, ok := opts.LookupEnv("POD_NAMESPACE"); ok && ns != "" {
				opts.LeaseNamespace = ns
			}
		}
	}
	if opts.Identity == "" {
		opts.Identity = defaultIdentity()
	}
	client, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	s := &Source{opts: opts, log: opts.Logger, client: client, applied: map[string]int64{}, statuses: map[string]siteStatus{}, wake: make(chan struct{}, 1)}
	if err := s.checkAccess(ctx); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	ns := opts.Namespace
	if ns == AllNamespaces {
		ns = metav1.NamespaceAll
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, opts.Resync, ns, nil)
	gi := factory.ForResource(Resource)
	s.informer, s.lister = gi.Informer(), gi.Lister()
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.noteChange() },
		UpdateFunc: s.onUpdate,
		DeleteFunc: func(any) { s.noteChange() },
	}); err != nil {
		s.cancel()
		return nil, fmt.Errorf("kubernetes informer: %w", err)
	}
	factory.Start(s.ctx.Done())
	syncCtx, cancel := context.WithTimeout(s.ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), s.informer.HasSynced) {
		s.cancel()
		return nil, fmt.Errorf("kubernetes: the ConduitSite list in %s did not complete within %s", s.scope(), syncTimeout)
	}
	return s, nil
}

// ValidNamespace checks a --kubernetes-namespace value: AllNamespaces or a namespace name
// (an RFC 1123 label: lower-case letters, digits and '-', at most 63 characters).
func ValidNamespace(ns string) error {
	if ns == AllNamespaces {
		return nil
	}
	if ns == "" || len(ns) > 63 {
		return fmt.Errorf("namespace %q: must be 1 to 63 characters, or %q for all namespaces", ns, AllNamespaces)
	}
	for i, c := range ns {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(ns)-1
		if !ok {
			return fmt.Errorf("namespace %q: only lower-case letters, digits and '-' (not first or last), or %q for all namespaces", ns, AllNamespaces)
		}
	}
	return nil
}

// defaultIdentity is the host name with a random suffix, so two replicas on one host differ.
func defaultIdentity() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = randRead(b[:])
	return fmt.Sprintf("%s_%x", host, b)
}

// scope describes what the source watches, for messages.
func (s *Source) scope() string {
	if s.opts.Namespace == AllNamespaces {
		return "all namespaces"
	}
	return "namespace " + s.opts.Namespace
}

// String names the source in logs.
func (s *Source) String() string { return "kubernetes ConduitSites in " + s.scope() }

// onUpdate notes a spec change (metadata.generation moved) or a resync (same resource
// version); a status or metadata-only update is not a change of configuration, so the
// source's own status writes do not loop.
func (s *Source) onUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(*unstructured.Unstructured)
	n, ok2 := newObj.(*unstructured.Unstructured)
	if ok1 && ok2 && o.GetResourceVersion() != n.GetResourceVersion() && o.GetGeneration() == n.GetGeneration() {
		return
	}
	s.noteChange()
}

// noteChange counts a change and, once Watch runs, reloads after the debounce.
func (s *Source) noteChange() {
	s.events.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scheduleLocked()
}

// scheduleLocked (re)starts the debounce timer when a watcher is set.
func (s *Source) scheduleLocked() {
	if s.changed == nil {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	changed := s.changed
	s.timer = time.AfterFunc(s.opts.Debounce, changed)
}

// Load combines every ConduitSite in scope, ordered by namespace and name so that every
// replica builds the same generation, into one document of sites. A resource that names a
// host file (HostFileKeys) makes Load fail with a *RefusedError.
func (s *Source) Load(context.Context) (*config.Document, error) {
	seen := s.events.Load()
	objs, err := s.lister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list ConduitSites: %w", err)
	}
	sites := make([]site, 0, len(objs))
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		spec, _, _ := unstructured.NestedMap(u.Object, "spec")
		sites = append(sites, site{key: u.GetNamespace() + "/" + u.GetName(), namespace: u.GetNamespace(), name: u.GetName(), generation: u.GetGeneration(), spec: spec})
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].key < sites[j].key })
	s.mu.Lock()
	s.snapshot, s.loaded = sites, seen
	s.mu.Unlock()

	refused := &RefusedError{Reasons: map[string]string{}}
	specs := make([]any, len(sites))
	for i, st := range sites {
		specs[i] = st.spec
		if st.spec == nil {
			refused.Reasons[st.key] = "refused: the resource has no spec"
			specs[i] = map[string]any{}
		}
	}
	data, err := json.Marshal(map[string]any{"sites": specs})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: encode ConduitSites: %w", err)
	}
	doc, err := config.Parse(data, config.FormatJSON, s.opts.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: ConduitSites: %w", err)
	}
	for i, st := range sites {
		// Both before and after $VAR substitution: a value from the environment is
		// checked as much as one written in the resource.
		keys := HostFileKeys(st.spec)
		if i < len(doc.Sites) {
			keys = append(keys, HostFileKeys(doc.Sites[i])...)
		}
		if len(keys) == 0 {
			continue
		}
		sort.Strings(keys)
		keys = slices.Compact(keys)
		for j := range keys {
			keys[j] = config.Join("spec", keys[j])
		}
		refused.Reasons[st.key] = "refused: a ConduitSite may not name files on Conduit's host: " + strings.Join(keys, ", ")
	}
	if len(refused.Reasons) > 0 {
		return nil, refused
	}
	return doc, nil
}

// RefusedError is a Load refused because resources cross the trust boundary; Reasons maps
// namespace/name to the reason written to that resource's status.
type RefusedError struct {
	Reasons map[string]string
}

// Error lists every refused resource with its reason.
func (e *RefusedError) Error() string {
	keys := make([]string, 0, len(e.Reasons))
	for k := range e.Reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = "ConduitSite " + k + " " + e.Reasons[k]
	}
	return strings.Join(parts, "; ")
}

// Report turns the outcome of the last Load into each resource's status: on success every
// resource is ready (its message names the warnings that concern it); on failure a resource
// that an error is about, or that changed since the serving generation, is not ready with
// the errors, and an unchanged resource keeps "ready" (it is still served as it is). The
// replica that holds the Lease writes the statuses; a failing first config (before Watch
// runs; the process then exits) is written at once.
func (s *Source) Report(d *config.Diagnostics, err error) {
	s.mu.Lock()
	sites := s.snapshot
	next := make(map[string]siteStatus, len(sites))
	if err == nil {
		applied := make(map[string]int64, len(sites))
		for i, st := range sites {
			applied[st.key] = st.generation
			msg := "serving"
			if w := siteDiagnostics(d, i, true); len(w) > 0 {
				msg += "; " + strings.Join(w, "; ")
			}
			next[st.key] = siteStatus{Ready: true, Message: clip(msg)}
		}
		s.applied, s.served = applied, sites
	} else {
		var refused *RefusedError
		errors.As(err, &refused)
		for i, st := range sites {
			var msgs []string
			if refused != nil {
				if r, ok := refused.Reasons[st.key]; ok {
					msgs = append(msgs, r)
				}
			}
			msgs = append(msgs, siteDiagnostics(d, i, false)...)
			gen, served := s.applied[st.key]
			switch {
			case len(msgs) > 0:
				next[st.key] = siteStatus{Message: clip(strings.Join(msgs, "; "))}
			case served && gen == st.generation:
				next[st.key] = siteStatus{Ready: true, Message: "serving (the last update of other resources was refused)"}
			default:
				next[st.key] = siteStatus{Message: clip("not applied: " + nameSites(err.Error(), sites, s.served))}
			}
			if !next[st.key].Ready {
				s.log.Error("ConduitSite not ready", "resource", st.key, "reason", next[st.key].Message)
			}
		}
	}
	s.statuses = next
	watching := s.watching
	s.mu.Unlock()
	if !watching {
		if err != nil {
			s.writeStatuses()
		}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sitePathRe finds the site paths in an error that is not a diagnostic (a cold-field
// change names "sites[2].port", or "port 9090 removed (sites[1].port)" of the running
// configuration).
var sitePathRe = regexp.MustCompile(`(removed \()?sites\[(\d+)\]`)

// nameSites writes each "sites[N]" of msg as the resource it is ("ConduitSite ns/name
// spec"): of sites, or of served after "removed (".
func nameSites(msg string, sites, served []site) string {
	return sitePathRe.ReplaceAllStringFunc(msg, func(m string) string {
		sub := sitePathRe.FindStringSubmatch(m)
		list, prefix := sites, ""
		if sub[1] != "" {
			list, prefix = served, sub[1]
		}
		i, err := strconv.Atoi(sub[2])
		if err != nil || i >= len(list) {
			return m
		}
		return prefix + "ConduitSite " + list[i].key + " spec"
	})
}

// siteDiagnostics returns the errors (or, with warnings, the warnings) of d at site i,
// with "sites[i]" written as "spec".
func siteDiagnostics(d *config.Diagnostics, i int, warnings bool) []string {
	if d == nil {
		return nil
	}
	list := d.Errors()
	if warnings {
		list = d.Warnings()
	}
	prefix := config.Index("sites", i)
	var out []string
	for _, x := range list {
		rest, ok := strings.CutPrefix(x.Path, prefix)
		if !ok || rest != "" && rest[0] != '.' {
			continue
		}
		x.Path = "spec" + rest
		out = append(out, x.String())
	}
	return out
}

// clip bounds a status message.
func clip(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && msg[cut]&0xC0 == 0x80 {
		cut--
	}
	return msg[:cut] + "…"
}

// Watch reloads through changed after every change the informer sees (debounced), starts
// the Lease election of the status writer and the writer itself. It returns at once; all
// of it stops when the source's context ends.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	s.mu.Lock()
	s.changed = changed
	s.watching = true
	missed := s.events.Load() != s.loaded
	if missed {
		s.scheduleLocked()
	}
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
		s.cancel()
	}()
	if err := s.startElection(); err != nil {
		return err
	}
	go s.statusWriter()
	return nil
}

// Close stops the informer, the election (releasing the Lease) and the status writer.
func (s *Source) Close() {
	s.cancel()
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.changed = nil
	s.mu.Unlock()
}

// IsLeader reports whether this replica holds the Lease and writes statuses.
func (s *Source) IsLeader() bool { return s.leader.Load() }

// StatusWrites returns how many status patches this replica has sent.
func (s *Source) StatusWrites() int64 { return s.statusWrites.Load() }

// statusWriter writes the statuses each time Report or the election wakes it, while this
// replica leads.
func (s *Source) statusWriter() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
			if s.leader.Load() {
				s.writeStatuses()
			}
		}
	}
}

// writeStatuses patches the status of every resource whose status differs from the one
// Report decided (the informer's copy tells the current one).
func (s *Source) writeStatuses() {
	s.mu.Lock()
	want := make(map[string]siteStatus, len(s.statuses))
	for k, v := range s.statuses {
		want[k] = v
	}
	s.mu.Unlock()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		st := want[key]
		ns, name, _ := strings.Cut(key, "/")
		if cur, ok := s.currentStatus(key); ok && cur == st {
			continue
		}
		body, err := json.Marshal(map[string]any{"status": st})
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		_, err = s.client.Resource(Resource).Namespace(ns).Patch(ctx, name, mergePatch, body, metav1.PatchOptions{FieldManager: fieldManager}, "status")
		cancel()
		if err != nil {
			s.log.Warn("ConduitSite status not written", "resource", key, "err", err)
			continue
		}
		s.statusWrites.Add(1)
	}
}

// currentStatus is the status the informer last saw on a resource.
func (s *Source) currentStatus(key string) (siteStatus, bool) {
	obj, exists, err := s.informer.GetStore().GetByKey(key)
	if err != nil || !exists {
		return siteStatus{}, false
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return siteStatus{}, false
	}
	raw, found, _ := unstructured.NestedMap(u.Object, "status")
	if !found {
		return siteStatus{}, false
	}
	ready, _, _ := unstructured.NestedBool(raw, "ready")
	msg, _, _ := unstructured.NestedString(raw, "message")
	return siteStatus{Ready: ready, Message: msg}, true
}
