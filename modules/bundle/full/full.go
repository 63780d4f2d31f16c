// Package full is the full bundle: standard plus redis, diskcache, faults, otlp, extauthz,
// extproc, kubernetes, script, tcp, upload and wasm, one file maybe_<feature>.go each (maybe_<feature>_feature.go for a feature named
// like a Go target, such as wasm), holding a single blank import behind
// `//go:build !conduit_omit_<feature>`. Import it for its side effects; cmd/conduit-full does.
// A module joins in the change that builds it. Full-only modules may bring heavy dependencies
// (the OTLP exporter), which is why the dependency guard in xbuild/guard_test.go checks that
// the standard binary never links them.
package full

import (
	_ "github.com/conduitproxy/conduit/modules/bundle/standard"
)
