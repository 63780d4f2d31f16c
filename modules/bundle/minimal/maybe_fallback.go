//go:build !conduit_omit_fallback

package minimal

import _ "github.com/conduitproxy/conduit/modules/fallback"
