//go:build !conduit_omit_jwt

package standard

import _ "github.com/conduitproxy/conduit/modules/auth/jwt"
