// Package servertest starts a real Conduit server in-process for tests: every configured port
// is mapped to an ephemeral listener on the site's bind address (127.0.0.1 without one), and the server is shut down when the test
// ends. The modules under test must be imported by the test (blank imports).
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
)

// Server is a running in-process Conduit.
type Server struct {
	*server.Server
	// Generation is the generation it started with.
	Generation *server.Generation
	// Diagnostics are the build's warnings.
	Diagnostics *config.Diagnostics
}

// Start builds src (YAML or JSON) and serves it. It fails the test on any config error.
func Start(t testing.TB, src string) *Server {
	t.Helper()
	s, err := TryStart(t, src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TryStart is Start returning the error instead of failing.
func TryStart(t testing.TB, src string) (*Server, error) {
	t.Helper()
	return tryStart(t, src, nil)
}

// StartLogged is Start with the server's process logger set to log, so a test can read what
// the server and its modules log.
func StartLogged(t testing.TB, src string, log *slog.Logger) *Server {
	t.Helper()
	s, err := tryStart(t, src, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStart builds src with log as the process logger (nil: slog.Default()) and serves it.
func tryStart(t testing.TB, src string, log *slog.Logger) (*Server, error) {
	t.Helper()
	format := config.FormatYAML
	if strings.HasPrefix(strings.TrimSpace(src), "{") || strings.HasPrefix(strings.TrimSpace(src), "[{") {
		format = config.FormatJSON
	}
	doc, err := config.Parse([]byte(src), format, nil)
	if err != nil {
		return nil, err
	}
	srv := server.New(server.Options{Listen: Ephemeral, Logger: log})
	g, d := server.Build(context.Background(), doc, srv.BuildOptions())
	return serve(t, srv, g, d)
}

// StartFile builds the config file at path, with $VARs from the process environment (as
// `conduit -c path` does), and serves it; reloads re-read the file. It fails the test on any
// config error.
func StartFile(t testing.TB, path string) *Server {
	t.Helper()
	return StartFileLogged(t, path, nil)
}

// StartFileLogged is StartFile with the server's process logger set to log (nil:
// slog.Default()).
func StartFileLogged(t testing.TB, path string, log *slog.Logger) *Server {
	t.Helper()
	srv := server.New(server.Options{Listen: Ephemeral, Logger: log})
	g, d, err := server.LoadAndBuild(context.Background(), path, srv.BuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	s, err := serve(t, srv, g, d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newServer returns a server whose every configured port listens on an ephemeral
// 127.0.0.1 port.
func newServer() *server.Server {
	return server.New(server.Options{Listen: Ephemeral})
}

// serve starts g on srv unless the build failed, and shuts srv down when the test ends.
func serve(t testing.TB, srv *server.Server, g *server.Generation, d *config.Diagnostics) (*Server, error) {
	if d.HasErrors() {
		return nil, d.Err()
	}
	if err := srv.Start(g); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &Server{Server: srv, Generation: g, Diagnostics: d}, nil
}

// Reload builds src (YAML) beside the running generation, with the server's shared store, and
// swaps it in, as a reload does. It fails the test on a config error or a refused swap.
func (s *Server) Reload(t testing.TB, src string) {
	t.Helper()
	doc, err := config.Parse([]byte(src), config.FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, d := server.Build(context.Background(), doc, s.BuildOptions())
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	if err := s.Swap(g); err != nil {
		t.Fatal(err)
	}
}

// Ephemeral opens an ephemeral-port listener in place of a configured port: on the site's
// bind address when it has one, else on 127.0.0.1. It is the Options.Listen of Start; tests
// that build a server.Server themselves use it too.
func Ephemeral(host string, _ int) (net.Listener, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// StartAdmin serves the Admin API of s on an ephemeral 127.0.0.1 port until the test ends;
// shutdown (may be nil) is what POST /shutdown calls.
func StartAdmin(t testing.TB, s *Server, shutdown func()) *admin.API {
	t.Helper()
	api, err := admin.Start("127.0.0.1:0", admin.Options{Server: s.Server, Shutdown: shutdown})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Close(ctx)
	})
	return api
}

// URL returns "http://127.0.0.1:N" for a configured port.
func (s *Server) URL(port int) string {
	return "http://" + s.HostPort(port)
}

// HostPort returns the listener address of a configured port.
func (s *Server) HostPort(port int) string {
	a := s.Addr(port)
	if a == nil {
		panic(fmt.Sprintf("servertest: no listener for port %d", port))
	}
	return a.String()
}

// Build only builds src and returns the diagnostics (for validation tests).
func Build(src string, format config.Format) (*server.Generation, *config.Diagnostics, error) {
	doc, err := config.Parse([]byte(src), format, nil)
	if err != nil {
		return nil, nil, err
	}
	g, d := server.Build(context.Background(), doc, server.BuildOptions{})
	return g, d, nil
}

// AdminHandler returns the Admin API endpoint method+path that a module instance of g
// provides; it fails the test when there is none.
func AdminHandler(t testing.TB, g *server.Generation, method, path string) http.Handler {
	t.Helper()
	for _, inst := range g.Instances() {
		if p, ok := inst.(core.AdminProvider); ok {
			for _, e := range p.AdminEndpoints() {
				if e.Method == method && e.Path == path {
					return e.Handler
				}
			}
		}
	}
	t.Fatalf("no admin endpoint %s %s in the generation", method, path)
	return nil
}
