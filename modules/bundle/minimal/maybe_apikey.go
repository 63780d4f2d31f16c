//go:build !conduit_omit_apikey

package minimal

import _ "github.com/conduitproxy/conduit/modules/auth/apikey"
