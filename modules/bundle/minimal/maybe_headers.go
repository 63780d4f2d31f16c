//go:build !conduit_omit_headers

package minimal

import _ "github.com/conduitproxy/conduit/modules/headers"
