package h2serve

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// HoldDelay is the longest a write of an h2c connection is held back waiting for the next
// one (see the package documentation): after it, the held bytes are written on their own.
const HoldDelay = time.Millisecond

// holdMax is the most bytes a connection holds back; a write that would take the held bytes
// beyond it is not held. It is the size of net/http's HTTP/2 write buffer (one flush of
// response HEADERS frames, typically a few hundred bytes per stream, stays below it).
const holdMax = 4 << 10

// closeFlushTimeout bounds how long Close waits to write held bytes to a client that does
// not read.
const closeFlushTimeout = 10 * time.Millisecond

// HTTP/2 frame header fields (RFC 9113, section 4.1) the write side looks at.
const (
	frameHeaderLen    = 9
	frameHeaders      = 0x1
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagEndHeaders    = 0x4
)

// holdBufs holds the buffers of held bytes, taken when a connection holds a write back and
// returned when the held bytes are written, so an idle connection keeps none.
var holdBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*holdMax); return &b }}

// writer is the write side of an h2c connection: it holds a write back when it ends with a
// response's HEADERS frame whose stream continues (no END_STREAM), and writes it with the
// next write or after HoldDelay. Writes, the timer and Close take mu, so bytes reach the
// connection in the order they were written.
type writer struct {
	mu sync.Mutex
	// scan follows the frame boundaries of the bytes written so far.
	scan frameScan
	// held are the bytes written and not yet sent (nil: none, no buffer taken).
	held *[]byte
	// timer writes the held bytes HoldDelay after the first of them was held.
	timer *time.Timer
	// err is the error of a held write sent by the timer; later writes return it.
	err error
	// closed is set by Close; the timer then writes nothing.
	closed bool
}

// write writes p for the connection c, holding it back or joining it with held bytes.
func (c *conn) write(p []byte) (int, error) {
	w := &c.wr
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, net.ErrClosed // nothing would write what is held now
	}
	// The scan takes in p only as far as p is accepted: after a write that reached the
	// connection in part, net/http writes the rest again (WriteByteTimeout).
	next := w.scan
	hold := next.feed(p) && c.hold > 0
	if w.held == nil {
		if hold && len(p) <= holdMax {
			w.scan = next
			w.held = holdBufs.Get().(*[]byte)
			*w.held = append((*w.held)[:0], p...)
			if w.timer == nil {
				w.timer = time.AfterFunc(c.hold, c.flushHeld)
			} else {
				w.timer.Reset(c.hold)
			}
			return len(p), nil
		}
		n, err := c.Conn.Write(p)
		w.accepted(p, n, next)
		return n, err
	}
	held := *w.held
	if hold && len(held)+len(p) <= holdMax {
		// Still a stream's headers waiting for its body: keep holding, on the first
		// write's timer.
		w.scan = next
		*w.held = append(held, p...)
		return len(p), nil
	}
	w.timer.Stop()
	if len(held)+len(p) <= cap(held) {
		n, err := c.send(append(held, p...))
		n -= len(held)
		if n < 0 {
			return 0, err
		}
		w.accepted(p, n, next)
		return n, err
	}
	// p does not fit beside the held bytes: two writes.
	if _, err := c.send(held); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	w.accepted(p, n, next)
	return n, err
}

// accepted records that the first n bytes of p were written: the scan becomes next (p
// scanned whole) when all of p was, and takes in only p[:n] otherwise.
func (w *writer) accepted(p []byte, n int, next frameScan) {
	if n >= len(p) {
		w.scan = next
	} else if n > 0 {
		w.scan.feed(p[:n])
	}
}

// send writes b, which starts with the held bytes, on the wrapped connection and releases
// the held buffer; on an error the unsent held bytes are dropped (net/http closes the
// connection after a failed write).
func (c *conn) send(b []byte) (int, error) {
	w := &c.wr
	n, err := c.Conn.Write(b)
	*w.held = b[:0]
	holdBufs.Put(w.held)
	w.held = nil
	return n, err
}

// flushHeld is the timer's function: it writes the held bytes. A failed write closes the
// connection, as net/http does after a failed frame write, and is returned by later writes.
func (c *conn) flushHeld() {
	w := &c.wr
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held == nil || w.closed || w.err != nil {
		return
	}
	if _, err := c.send(*w.held); err != nil {
		w.err = fmt.Errorf("h2serve: held write: %w", err)
		_ = c.Conn.Close()
	}
}

// closeWrites writes the held bytes, waiting at most closeFlushTimeout for the client, and
// stops the timer. A write in progress (blocked on a client that does not read) is not
// waited for: the caller's Close then ends it, as it would on the bare connection.
func (c *conn) closeWrites() {
	w := &c.wr
	if !w.mu.TryLock() {
		return
	}
	defer w.mu.Unlock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.held == nil || w.err != nil {
		return
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	_, _ = c.send(*w.held)
}

// frameScan follows the HTTP/2 frames in a stream of written bytes, which may cut frames
// anywhere (net/http's write buffer flushes 4 KiB at a time).
type frameScan struct {
	hdr  [frameHeaderLen]byte
	nhdr int // bytes of hdr read so far
	left int // payload bytes of the current frame still to come
	// last is the type and flags of the last frame whose header was read.
	typ, flags byte
	// blockEnds is END_STREAM of the HEADERS frame that began the current header block.
	blockEnds bool
}

// feed reads p and reports whether it ends exactly after a frame that says more frames of
// its stream follow soon: a HEADERS frame (or the last CONTINUATION of its block) without
// END_STREAM, the response headers a body follows.
func (s *frameScan) feed(p []byte) bool {
	for len(p) > 0 {
		if s.left > 0 {
			k := min(s.left, len(p))
			s.left -= k
			p = p[k:]
			continue
		}
		k := copy(s.hdr[s.nhdr:], p)
		s.nhdr += k
		p = p[k:]
		if s.nhdr < frameHeaderLen {
			break
		}
		s.nhdr = 0
		s.left = int(s.hdr[0])<<16 | int(s.hdr[1])<<8 | int(s.hdr[2])
		s.typ, s.flags = s.hdr[3], s.hdr[4]
		if s.typ == frameHeaders {
			s.blockEnds = s.flags&flagEndStream != 0
		}
	}
	if s.left > 0 || s.nhdr > 0 {
		return false
	}
	switch s.typ {
	case frameHeaders, frameContinuation:
		return !s.blockEnds
	}
	return false
}
