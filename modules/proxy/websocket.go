package proxy

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/h1guard"
)

// switchProtocols completes a 101 upgrade: it hands the client connection and the upstream
// connection to each other and copies bytes both ways until either side closes.
func (rt *route) switchProtocols(w http.ResponseWriter, r *http.Request, resp *http.Response, reqType string) {
	upConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		core.Error(w, r, http.StatusBadGateway, "upstream upgrade without a connection")
		return
	}
	defer upConn.Close()
	if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, reqType) {
		core.Error(w, r, http.StatusBadGateway, "upstream switched to a protocol the client did not ask for")
		return
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err != nil {
		core.Error(w, r, http.StatusBadGateway, "cannot take over the client connection")
		return
	}
	defer conn.Close()
	h1guard.Passthrough(conn) // the connection now carries the upgraded protocol
	if st := core.State(r); st != nil {
		st.Writer.Status = http.StatusSwitchingProtocols
	}
	h := resp.Header.Clone()
	h.Del("Server")
	resp.Header = h
	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	// Bytes the client sent after its request (already buffered) go first.
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		if _, err := upConn.Write(buffered); err != nil {
			return
		}
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upConn, conn); closeWrite(upConn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upConn); closeWrite(conn); done <- struct{}{} }()
	<-done
	// One side finished; give the other a moment to drain its close frames, then tear down.
	t := time.NewTimer(wsDrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// wsDrainTimeout bounds how long one direction of an upgraded connection may linger after
// the other has closed.
const wsDrainTimeout = 10 * time.Second

// closeWrite half-closes a connection when it supports it, so the peer sees EOF while the
// other direction can still drain.
func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}
