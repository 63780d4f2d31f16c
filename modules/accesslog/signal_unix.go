//go:build unix

package accesslog

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReopen calls reopen on every SIGUSR1 until the returned stop function is called.
func notifyReopen(reopen func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		for {
			select {
			case <-ch:
				reopen()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
