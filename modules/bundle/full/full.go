// Package full is the full bundle: standard plus script, wasm, tcp, upload, redis, disk-cache,
// fault-injection, otlp and kubernetes. Import it for its side effects; cmd/conduit-full
// does.
//
// Each feature joins in the change that builds its module, as one file maybe_<feature>.go
// holding a single blank import behind `//go:build !conduit_omit_<feature>`. The full-only
// features are script, wasm, tcp, upload, redis, diskcache, faults, otlp and kubernetes
// (those built so far have their file here). They are the heavy ones (yaegi, client-go, the
// OTLP exporter), which is why the dependency guard in xbuild/guard_test.go checks that the
// standard binary never links them.
package full

import (
	_ "github.com/conduitproxy/conduit/modules/bundle/standard"
)
