package cli

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// startPprof serves the Go profiler on addr when CONDUIT_PPROF is set (a debugging aid for
// performance work). Only loopback addresses are accepted.
func startPprof(addr string, logger *slog.Logger) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		logger.Warn("CONDUIT_PPROF must be a loopback host:port; profiler not started", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		logger.Info("profiler listening", "addr", addr)
		if err := http.ListenAndServe(addr, mux); err != nil {
			logger.Warn("profiler stopped", "err", err)
		}
	}()
}
