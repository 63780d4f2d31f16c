//go:build !conduit_omit_acme

package standard

import _ "github.com/conduitproxy/conduit/modules/acme"
