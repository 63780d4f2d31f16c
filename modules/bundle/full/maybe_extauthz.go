//go:build !conduit_omit_extauthz

package full

import _ "github.com/conduitproxy/conduit/modules/extauthz"
