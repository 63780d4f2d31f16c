//go:build !conduit_omit_diskcache

package full

import _ "github.com/conduitproxy/conduit/modules/diskcache"
