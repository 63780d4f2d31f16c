//go:build !conduit_omit_basicauth

package minimal

import _ "github.com/conduitproxy/conduit/modules/auth/basic"
