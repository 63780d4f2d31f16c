//go:build !conduit_omit_redirects

package minimal

import _ "github.com/conduitproxy/conduit/modules/redirects"
