//go:build !conduit_omit_upload

package full

import _ "github.com/conduitproxy/conduit/modules/upload"
