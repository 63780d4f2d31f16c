// Command conduit-full is the full Conduit binary: the core plus the full bundle (standard
// plus redis, disk cache, fault injection and OTLP; see modules/bundle/full).
package main

import (
	"github.com/conduitproxy/conduit/core/cli"

	_ "github.com/conduitproxy/conduit/modules/bundle/full"
)

func main() { cli.Main() }
