//go:build !conduit_omit_hotreload

package minimal

import _ "github.com/conduitproxy/conduit/modules/hotreload"
