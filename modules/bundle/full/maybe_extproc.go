//go:build !conduit_omit_extproc

package full

import _ "github.com/conduitproxy/conduit/modules/extproc"
