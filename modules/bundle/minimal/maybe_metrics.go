//go:build !conduit_omit_metrics

package minimal

import _ "github.com/conduitproxy/conduit/modules/metrics"
