//go:build !conduit_omit_timing

package minimal

import _ "github.com/conduitproxy/conduit/modules/timing"
