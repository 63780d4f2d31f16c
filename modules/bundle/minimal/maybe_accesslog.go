//go:build !conduit_omit_accesslog

package minimal

import _ "github.com/conduitproxy/conduit/modules/accesslog"
