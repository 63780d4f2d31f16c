//go:build !conduit_omit_ratelimit

package minimal

import _ "github.com/conduitproxy/conduit/modules/ratelimit"
