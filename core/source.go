package core

import (
	"context"

	"github.com/conduitproxy/conduit/core/config"
)

// ConfigSource is where the server's configuration comes from. The server builds its first
// generation and every reload (SIGHUP, the Admin API, a watch) from its source, so nothing
// else knows where a generation came from. A config file is the default source; a module can
// supply another (modules/kubernetes builds one from ConduitSite resources) through
// cli.RegisterSource.
type ConfigSource interface {
	// Load returns the document the next generation is built from.
	Load(ctx context.Context) (*config.Document, error)
	// String names the source in logs: the file path, or what a module's source reads.
	String() string
}

// ConfigReporter is a ConfigSource told the outcome of building and applying the document
// its last Load returned: the build's diagnostics (nil when Load failed) and the error that
// kept the running generation (nil when the document is now serving). Report is called once
// per Load, before the next Load.
type ConfigReporter interface {
	Report(d *config.Diagnostics, err error)
}

// ConfigWatcher is a ConfigSource that knows when its configuration changed: Watch starts
// watching and calls changed (from any goroutine) after each change until ctx ends; changed
// reloads through the same path as SIGHUP.
type ConfigWatcher interface {
	Watch(ctx context.Context, changed func()) error
}
