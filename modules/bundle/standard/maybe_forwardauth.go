//go:build !conduit_omit_forwardauth

package standard

import _ "github.com/conduitproxy/conduit/modules/auth/forwardauth"
