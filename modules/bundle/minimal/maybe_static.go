//go:build !conduit_omit_static

package minimal

import _ "github.com/conduitproxy/conduit/modules/static"
