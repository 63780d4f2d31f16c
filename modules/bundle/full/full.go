// Package full is the full bundle: standard plus script, wasm, tcp, upload, redis, disk-cache,
// fault-injection, otlp and kubernetes (each joins as it is built). Import it for its side
// effects.
package full

import (
	_ "github.com/conduitproxy/conduit/modules/bundle/standard"
)
