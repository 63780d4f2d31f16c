//go:build !unix

package static

import "os"

// openFlags opens files read-only.
const openFlags = os.O_RDONLY
