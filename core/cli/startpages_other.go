//go:build !linux

package cli

import "log/slog"

// releaseStartupPages is Linux-only (see startpages_linux.go).
func releaseStartupPages(*slog.Logger) {}
