//go:build !unix

package proxy

import "net"

// canCheckAlive is false where no non-blocking peek is available: requests that cannot be
// retried stay on http.Transport there.
const canCheckAlive = false

// connectionAlive is never called where canCheckAlive is false.
func connectionAlive(net.Conn) bool { return false }
