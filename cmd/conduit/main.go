// Command conduit is the standard Conduit binary: the core plus the standard bundle.
package main

import (
	"github.com/conduitproxy/conduit/core/cli"

	_ "github.com/conduitproxy/conduit/modules/bundle/standard"
)

func main() { cli.Main() }
