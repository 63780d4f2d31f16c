//go:build !conduit_omit_cors

package minimal

import _ "github.com/conduitproxy/conduit/modules/cors"
