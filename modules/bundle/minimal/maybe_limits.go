//go:build !conduit_omit_limits

package minimal

import _ "github.com/conduitproxy/conduit/modules/limits"
