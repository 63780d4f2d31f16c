//go:build !conduit_omit_tap

package minimal

import _ "github.com/conduitproxy/conduit/modules/tap"
