//go:build !conduit_omit_tcp

package full

import _ "github.com/conduitproxy/conduit/modules/tcp"
