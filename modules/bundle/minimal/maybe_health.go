//go:build !conduit_omit_health

package minimal

import _ "github.com/conduitproxy/conduit/modules/health"
