package h1engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core/h1guard"
)

// isGuarded reports whether the engine serves nc (see h1guard.Guarded).
func isGuarded(nc net.Conn) bool { return h1guard.Guarded(nc) }

// Connection states beyond net/http's, kept in conn.state.
const (
	stateClosedByServer = 100 // Shutdown or SetKeepAlivesEnabled(false) closed it while idle
)

var (
	readerPool sync.Pool // *bufio.Reader, 4 KiB
	writerPool sync.Pool // *bufio.Writer, 4 KiB
)

const bufSize = 4096

func getReader(r io.Reader) *bufio.Reader {
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, bufSize)
}

func getWriter(w io.Writer) *bufio.Writer {
	if bw, ok := writerPool.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, bufSize)
}

// conn is one client connection. One goroutine (serve) reads its requests and runs the
// handler; nothing reads the connection in the background.
type conn struct {
	srv      *Server
	rwc      net.Conn // the guarded connection
	hook     *hookConn
	remote   string
	tlsState *tls.ConnectionState
	br       *bufio.Reader
	bw       *bufio.Writer
	head     []byte
	chunk    []byte       // the unused rest of the string chunk request heads are carved from
	dateSec  int64        // Unix second of date
	date     []byte       // the Date header value of dateSec
	tmpl     http.Request // filled per request; the handler gets a copy (WithContext)
	res      response     // reused for every request of the connection

	state atomic.Int64 // http.ConnState or stateClosedByServer
	newAt int64        // Unix seconds of the accept

	hijacked bool
	rdl      time.Time // the read deadline set on rwc; zero: none
	heads    uint64    // request heads read

	// Client-gone detection (watch_*.go).
	wfd      int    // the socket's descriptor, -1 when not watched
	wseq     uint32 // registration number (epoll data)
	mu       sync.Mutex
	cancel   context.CancelFunc // the request in flight (context.WithCancel); nil between requests
	rctx     *reqContext        // the request in flight (own context); nil between requests
	userCtx  context.Context    // what Server.RequestContext returned for the request in flight
	bodyDone bool               // the request in flight has no unread body
	buffered bool               // bytes of a next request were buffered when bodyDone was set
	finSeen  bool               // the client half-closed (EPOLLRDHUP)
	gone     bool               // the client went away: reported once
}

// hookConn is the connection as ConnContext and ConnState see it. It records the
// read-error callback (core.WithConnInfo) so that the engine can also report a client that
// goes away while no read is pending.
type hookConn struct {
	net.Conn
	onReadError func(error)
}

// OnReadError registers fn to be told about read errors and about the client going away.
func (h *hookConn) OnReadError(fn func(error)) {
	h.onReadError = fn
	if rc, ok := h.Conn.(interface{ OnReadError(func(error)) }); ok {
		rc.OnReadError(fn)
	}
}

// NetConn returns the guarded connection.
func (h *hookConn) NetConn() net.Conn { return h.Conn }

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{srv: s, rwc: nc, remote: nc.RemoteAddr().String(), wfd: -1, newAt: time.Now().Unix()}
	c.hook = &hookConn{Conn: nc}
	if cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		c.tlsState = &st
	}
	c.res.c = c
	return c
}

func (c *conn) setState(st http.ConnState) {
	c.state.Store(int64(st))
	if c.srv.ConnState != nil {
		c.srv.ConnState(c.hook, st)
	}
}

// toActive moves an idle or new connection to active; false when the server closed it.
func (c *conn) toActive() bool {
	for {
		st := c.state.Load()
		if st == stateClosedByServer {
			return false
		}
		if c.state.CompareAndSwap(st, int64(http.StateActive)) {
			break
		}
	}
	if c.srv.ConnState != nil {
		c.srv.ConnState(c.hook, http.StateActive)
	}
	return true
}

// closeIfIdle closes the connection when it waits for a request (or is new and older than
// 5 seconds, net/http's rule); it reports whether the connection is no longer in use.
func (c *conn) closeIfIdle() bool {
	st := c.state.Load()
	switch {
	case st == int64(http.StateIdle), st == int64(http.StateNew) && c.newAt < time.Now().Unix()-5:
		if c.state.CompareAndSwap(st, stateClosedByServer) {
			_ = c.rwc.Close()
		}
		return true
	case st == stateClosedByServer, st == int64(http.StateClosed), st == int64(http.StateHijacked):
		return true
	}
	return false
}

func (c *conn) logf(format string, args ...any) {
	if c.srv.ErrorLog != nil {
		c.srv.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// deadlineSlack is the most a read deadline may be set later than wanted, for a timeout d:
// min(1s, d/4). It lets armReadDeadline leave a deadline in place for up to that long
// instead of setting it for every request.
func deadlineSlack(d time.Duration) time.Duration { return min(time.Second, d/4) }

// armReadDeadline makes the connection's read deadline fall between now+d and
// now+d+deadlineSlack(d), setting it only when the one already set is outside that window:
// on a busy keep-alive connection at most once per slack. A timeout therefore fires up to
// the slack late, never early. d <= 0 clears the deadline.
func (c *conn) armReadDeadline(now time.Time, d time.Duration) {
	if d <= 0 {
		c.clearReadDeadline()
		return
	}
	want := now.Add(d)
	slack := deadlineSlack(d)
	if !c.rdl.IsZero() && !c.rdl.Before(want) && c.rdl.Sub(want) <= slack {
		return
	}
	c.rdl = want.Add(slack)
	_ = c.rwc.SetReadDeadline(c.rdl)
}

// clearReadDeadline removes the read deadline, if one is set.
func (c *conn) clearReadDeadline() {
	if !c.rdl.IsZero() {
		_ = c.rwc.SetReadDeadline(time.Time{})
		c.rdl = time.Time{}
	}
}

// headBuffered reports whether the buffered bytes hold a whole request head (up to its
// empty line): reading it then cannot block, so it needs no header deadline.
func (c *conn) headBuffered() bool {
	buf, _ := c.br.Peek(c.br.Buffered())
	return bytes.Contains(buf, crlfcrlf)
}

var crlfcrlf = []byte("\r\n\r\n")

func (c *conn) serve(base context.Context) {
	c.srv.trackConn(c, true)
	ctx := context.WithValue(base, http.LocalAddrContextKey, c.rwc.LocalAddr())
	if c.srv.ConnContext != nil {
		ctx = c.srv.ConnContext(ctx, c.hook)
	}
	c.br = getReader(c.rwc)
	c.bw = getWriter(c.rwc)
	c.setState(http.StateNew)
	c.srv.watchConn(c)
	closeWrite := false
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			const size = 64 << 10
			buf := make([]byte, size)
			buf = buf[:runtime.Stack(buf, false)]
			c.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
		}
		c.srv.trackConn(c, false)
		if c.hijacked {
			return
		}
		c.srv.unwatchConn(c)
		if closeWrite {
			c.closeWriteAndWait()
		}
		_ = c.rwc.Close()
		c.setState(http.StateClosed)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
	}()
	for first := true; ; first = false {
		// Between requests net/http waits for 4 bytes (a shorter rest before the end of
		// stream closes silently); the first request is read as it comes.
		if c.br.Buffered() == 0 || !first && c.br.Buffered() < 4 {
			st := c.state.Load()
			if st != int64(http.StateNew) {
				if !c.state.CompareAndSwap(st, int64(http.StateIdle)) {
					return
				}
				if c.srv.ConnState != nil {
					c.srv.ConnState(c.hook, http.StateIdle)
				}
				if !c.srv.keepAlives() {
					return
				}
			}
			c.armReadDeadline(time.Now(), c.srv.idleTimeout())
			if !first && c.br.Buffered() == 0 {
				// Let the client's next request arrive before reading: a keep-alive client
				// usually sends it as soon as it has the response, and a read that finds it
				// does not park the goroutine on the poller (an EAGAIN read, then a wake-up).
				runtime.Gosched()
			}
			want := 4
			if first {
				want = 1
			}
			if _, err := c.br.Peek(want); err != nil {
				return
			}
		}
		if !c.toActive() {
			return
		}
		if !c.headBuffered() {
			c.armReadDeadline(time.Now(), c.srv.ReadHeaderTimeout)
		}
		req, err := c.readRequest(ctx)
		if err != nil {
			closeWrite = c.answerError(err)
			return
		}
		if req.Body != http.NoBody {
			// The body is read without a deadline, as net/http without ReadTimeout does
			// (core's body timeout bounds it); a bodyless request keeps the idle deadline
			// armed for the next one, since nothing reads the connection meanwhile.
			c.clearReadDeadline()
		}
		w := &c.res
		if !c.serveRequest(w, req) {
			return
		}
		if !w.reusable() {
			closeWrite = w.werr == nil
			return
		}
		// A client reported gone is not closed on here: the next read sees its end of
		// stream after what it sent (net/http reads on too).
	}
}

// serveRequest runs the handler and finishes the response; false when the connection was
// hijacked or must close at once.
func (c *conn) serveRequest(w *response, req *http.Request) bool {
	defer c.endRequest()
	if w.expectFailed {
		w.sendExpectationFailed()
		w.closeAfter = true
		return true
	}
	if req.RequestURI == "*" && req.Method == http.MethodOptions {
		serveGlobalOptions(w, req) // net/http answers "OPTIONS *" itself
	} else {
		c.srv.Handler.ServeHTTP(w, req)
	}
	if c.hijacked {
		return false
	}
	w.finish()
	return true
}

// answerError answers a request that could not be read, as net/http does, and reports
// whether the connection should be half-closed before it is closed.
func (c *conn) answerError(err error) bool {
	var ge *h1guard.Error
	var ne net.Error
	switch {
	case errors.As(err, &ge):
		return false // the guard answered already
	case errors.Is(err, errTooLarge):
		c.writeRaw("431 Request Header Fields Too Large", "431 Request Header Fields Too Large")
		return true
	case err == io.EOF, errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne):
		return false // nothing to answer (net/http's isCommonNetReadError); a cut head is a 400
	}
	var se statusError
	if errors.As(err, &se) {
		text := itoa(se.code) + " " + http.StatusText(se.code) + ": " + se.text
		c.writeRaw(text, text)
		return true
	}
	public := "400 Bad Request"
	var br badRequestError
	if errors.As(err, &br) {
		public += ": " + string(br)
	}
	c.writeRaw(public, public)
	return true
}

// writeRaw writes net/http's plain error answer: status line, fixed headers, body.
func (c *conn) writeRaw(status, body string) {
	_ = c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+status+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+body)
	_ = c.rwc.SetWriteDeadline(time.Time{})
}

// closeWriteAndWait half-closes the connection and reads what the client still sends for
// at most 500 ms, so that unread request bytes do not turn the close into a reset that
// destroys the response (net/http waits 500 ms too).
func (c *conn) closeWriteAndWait() {
	_ = c.bw.Flush()
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, c.rwc, 256<<10)
}

// beginRequest records the request in flight for client-gone reports.
func (c *conn) beginRequest(cancel context.CancelFunc, rctx *reqContext, bodyDone bool) {
	c.mu.Lock()
	c.cancel, c.rctx = cancel, rctx
	c.bodyDone = bodyDone
	c.buffered = c.br.Buffered() > 0
	c.mu.Unlock()
	if bodyDone {
		c.checkFin()
	}
}

// endRequest cancels the request's context (as net/http does when the handler returns).
func (c *conn) endRequest() {
	c.mu.Lock()
	cancel, rctx := c.cancel, c.rctx
	c.cancel, c.rctx = nil, nil
	c.bodyDone = false
	c.mu.Unlock()
	cancelRequest(cancel, rctx)
	if uc := c.userCtx; uc != nil {
		c.userCtx = nil
		if f := c.srv.EndRequestContext; f != nil {
			f(uc)
		}
	}
}

// cancelRequest cancels a request's context, whichever kind it is.
func cancelRequest(cancel context.CancelFunc, rctx *reqContext) {
	if cancel != nil {
		cancel()
	}
	if rctx != nil {
		rctx.cancel()
	}
}

// bodyFinished is called when the request body was read to its end, by the goroutine that
// read it.
func (c *conn) bodyFinished() {
	c.mu.Lock()
	c.bodyDone = true
	c.buffered = c.br.Buffered() > 0
	c.mu.Unlock()
	c.checkFin()
}

// checkFin reports the client gone when it half-closed and nothing it sent is left to read:
// what net/http's background read would see as end of stream.
func (c *conn) checkFin() {
	c.mu.Lock()
	fin, ready := c.finSeen, c.bodyDone && !c.buffered && (c.cancel != nil || c.rctx != nil)
	c.mu.Unlock()
	if fin && ready && c.unreadBytes() == 0 {
		c.clientGone(io.EOF)
	}
}

// clientGone tells the connection's watcher and cancels the request in flight.
func (c *conn) clientGone(err error) {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return
	}
	c.gone = true
	cancel, rctx := c.cancel, c.rctx
	c.mu.Unlock()
	if fn := c.hook.onReadError; fn != nil {
		fn(err)
	}
	cancelRequest(cancel, rctx)
}

// serveGlobalOptions answers "OPTIONS *" as net/http's server does: 200, empty.
func serveGlobalOptions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
	}
}
