//go:build !conduit_omit_cache

package standard

import _ "github.com/conduitproxy/conduit/modules/cache"
