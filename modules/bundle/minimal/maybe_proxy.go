//go:build !conduit_omit_proxy

package minimal

import _ "github.com/conduitproxy/conduit/modules/proxy"
