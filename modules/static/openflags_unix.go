//go:build unix

package static

import (
	"os"
	"syscall"
)

// openFlags opens files read-only and non-blocking, so a FIFO in a served directory cannot
// hang a request (O_NONBLOCK has no effect on regular files and directories).
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
