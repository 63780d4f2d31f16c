//go:build !conduit_omit_ipfilter

package minimal

import _ "github.com/conduitproxy/conduit/modules/ipfilter"
