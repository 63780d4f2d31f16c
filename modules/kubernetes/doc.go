// Package kubernetes is Conduit's ConduitSite CRD mode (feature kubernetes, full bundle): a
// configuration source (core.ConfigSource) that serves every ConduitSite resource of a
// namespace, or of all namespaces, as one multi-site configuration. A client-go informer
// lists and watches the resources; each change reloads through the server's usual reload
// path (a failing update keeps the running generation); the replica that holds a Lease
// writes each resource's status {ready, message}. A ConduitSite may not name files on
// Conduit's host (HostFileKeys). `conduit --kubernetes-namespace NS` selects it
// (docs/deployment.md).
package kubernetes
