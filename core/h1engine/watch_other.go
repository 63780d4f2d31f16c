//go:build !linux

package h1engine

// On systems other than Linux the engine has no client-gone watcher: a client that goes
// away is noticed at the next read or write, and the request context ends when the
// handler returns.
type watcher struct{}

func (s *Server) watchConn(*conn)   {}
func (s *Server) unwatchConn(*conn) {}
func (s *Server) stopWatch()        {}
func (c *conn) unreadBytes() int    { return 0 }
