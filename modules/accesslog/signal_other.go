//go:build !unix

package accesslog

// notifyReopen does nothing where there is no SIGUSR1; a reload still reopens the file.
func notifyReopen(func()) (stop func()) { return func() {} }
