//go:build !conduit_omit_faults

package full

import _ "github.com/conduitproxy/conduit/modules/faults"
