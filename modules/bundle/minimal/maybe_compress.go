//go:build !conduit_omit_compress

package minimal

import _ "github.com/conduitproxy/conduit/modules/compress"
