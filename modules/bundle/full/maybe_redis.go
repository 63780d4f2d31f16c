//go:build !conduit_omit_redis

package full

import _ "github.com/conduitproxy/conduit/modules/redis"
