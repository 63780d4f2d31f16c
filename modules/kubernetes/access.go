package kubernetes

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// selfAccessReviews is the resource Conduit asks "may I?" with; every authenticated
// identity may create one (Kubernetes' system:basic-user role).
var selfAccessReviews = schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews"}

// permission is one RBAC rule the source needs.
type permission struct {
	verb, group, resource, subresource, namespace string
}

// String spells the permission the way an RBAC rule grants it.
func (p permission) String() string {
	r := p.resource
	if p.subresource != "" {
		r += "/" + p.subresource
	}
	if p.group != "" {
		r += "." + p.group
	}
	where := "in namespace " + p.namespace
	if p.namespace == "" {
		where = "in all namespaces (a ClusterRole)"
	}
	return p.verb + " " + r + " " + where
}

// permissions lists what the source needs: list and watch ConduitSites (get too, which
// the shipped Roles grant), patch their status, and get, create and update its Lease.
func (s *Source) permissions() []permission {
	ns := s.opts.Namespace
	if ns == AllNamespaces {
		ns = ""
	}
	return []permission{
		{verb: "get", group: Resource.Group, resource: Resource.Resource, namespace: ns},
		{verb: "list", group: Resource.Group, resource: Resource.Resource, namespace: ns},
		{verb: "watch", group: Resource.Group, resource: Resource.Resource, namespace: ns},
		{verb: "patch", group: Resource.Group, resource: Resource.Resource, subresource: "status", namespace: ns},
		{verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: s.opts.LeaseNamespace},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: s.opts.LeaseNamespace},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: s.opts.LeaseNamespace},
	}
}

// checkAccess fails with every missing permission named (and where the RBAC manifests
// are), or with a clear cause when the API server cannot be asked or the CRD is missing.
func (s *Source) checkAccess(ctx context.Context) error {
	var missing []string
	for _, p := range s.permissions() {
		ok, err := s.allowed(ctx, p)
		if err != nil {
			return fmt.Errorf("kubernetes: cannot check access to the API server %s: %w", s.opts.Config.Host, err)
		}
		if !ok {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kubernetes: this identity lacks RBAC permissions: %s (contrib/k8s/rbac.yaml grants them for one namespace, contrib/k8s/rbac-cluster.yaml for all)", strings.Join(missing, "; "))
	}
	ns := s.opts.Namespace
	if ns == AllNamespaces {
		ns = metav1.NamespaceAll
	}
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.client.Resource(Resource).Namespace(ns).List(lctx, metav1.ListOptions{Limit: 1}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("kubernetes: the ConduitSite resource (conduitsites.conduit.io/v1) is not installed in the cluster: apply contrib/k8s/conduitsite-crd.yaml")
		}
		return fmt.Errorf("kubernetes: list ConduitSites in %s: %w", s.scope(), err)
	}
	return nil
}

// allowed asks the API server whether this identity may do p.
func (s *Source) allowed(ctx context.Context, p permission) (bool, error) {
	attrs := map[string]any{"verb": p.verb, "group": p.group, "resource": p.resource}
	if p.subresource != "" {
		attrs["subresource"] = p.subresource
	}
	if p.namespace != "" {
		attrs["namespace"] = p.namespace
	}
	review := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authorization.k8s.io/v1",
		"kind":       "SelfSubjectAccessReview",
		"spec":       map[string]any{"resourceAttributes": attrs},
	}}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.client.Resource(selfAccessReviews).Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	ok, _, _ := unstructured.NestedBool(out.Object, "status", "allowed")
	return ok, nil
}
