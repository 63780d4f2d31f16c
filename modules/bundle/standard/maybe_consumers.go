//go:build !conduit_omit_consumers

package standard

import _ "github.com/conduitproxy/conduit/modules/auth/consumers"
