//go:build !conduit_omit_kubernetes

package full

import _ "github.com/conduitproxy/conduit/modules/kubernetes"
