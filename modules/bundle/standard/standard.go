// Package standard is the standard bundle: minimal plus jwt, consumers, forward-auth, cache,
// acme and http3. Import it for its side effects; cmd/conduit does.
//
// Each feature joins in the change that builds its module, as one file maybe_<feature>.go
// holding a single blank import behind `//go:build !conduit_omit_<feature>` (the same
// convention as the minimal bundle). xbuild reads these files to map feature names to
// packages, so a feature listed here is automatically buildable with `xbuild --features`.
// The standard-only features are jwt, consumers, forwardauth, cache, acme and http3.
package standard

import (
	_ "github.com/conduitproxy/conduit/modules/bundle/minimal"
)
