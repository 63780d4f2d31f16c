// Package standard is the standard bundle: minimal plus jwt, consumers, forward-auth, cache
// and acme (each joins as it is built). Import it for its side effects.
package standard

import (
	_ "github.com/conduitproxy/conduit/modules/bundle/minimal"
)
