//go:build !conduit_omit_otlp

package full

import _ "github.com/conduitproxy/conduit/modules/otlp"
