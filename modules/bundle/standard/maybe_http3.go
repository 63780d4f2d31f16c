//go:build !conduit_omit_http3

package standard

import _ "github.com/conduitproxy/conduit/modules/http3"
