package h1guard_test

import (
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/h1engine"
	"github.com/conduitproxy/conduit/core/h1guard"
)

// With CONDUIT_HTTP1_ENGINE=conduit the guard's server tests (corpus, limits, pipelining,
// upgrades, write timeout) run against core/h1engine instead of net/http's server: the
// test matrix of the two HTTP/1 engines.
func init() {
	if os.Getenv("CONDUIT_HTTP1_ENGINE") != "conduit" {
		return
	}
	*h1guard.ServeHTTP1 = func(t testing.TB, h http.Handler, gl net.Listener) {
		srv := &h1engine.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(gl) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
}
