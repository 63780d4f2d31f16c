package tcp

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// result is how a relayed connection ended.
type result struct {
	// in counts the bytes from the client to the upstream, out those from the upstream to
	// the client.
	in, out int64
	// end is "closed" (both sides finished), "idle timeout", "max duration", "error" or
	// "upstream error" (set by the caller), "shutdown" (set by the caller).
	end string
	// err is the first error that ended the connection, nil when it closed normally.
	err error
}

// relay copies between client and up in both directions until both are done, and closes
// neither (the caller does). A side that ends its stream (EOF) gets its peer's write side
// closed (TCP FIN, or a TLS close_notify) while the other direction goes on. Any error ends
// both directions. No byte moving in either direction for idle, or a write blocked for idle,
// ends the connection; so does maxDuration (0: none) after the start.
//
// Each direction is an io.Copy, so that two *net.TCPConn relay with splice(2). The copy is
// interrupted every idle/4 by a read deadline, which is how a direction notices that the
// other one has been moving bytes (then it goes on) or that nothing moved for idle (then the
// connection ends). A read interrupted by its deadline loses nothing; a write that missed
// its deadline may have lost data in flight, so it always ends the connection.
func relay(client, up net.Conn, idle, maxDuration time.Duration) result {
	r := &relayState{idle: idle, tick: max(idle/4, time.Millisecond)}
	r.last.Store(time.Now().UnixNano())
	var overtime atomic.Bool
	if maxDuration > 0 {
		t := time.AfterFunc(maxDuration, func() {
			overtime.Store(true)
			r.abort(client, up)
		})
		defer t.Stop()
	}
	type half struct {
		n    int64
		idle bool
		err  error
	}
	var wg sync.WaitGroup
	var in half
	wg.Add(1)
	go func() {
		defer wg.Done()
		in.n, in.idle, in.err = r.pipe(up, client)
		if in.err != nil {
			r.abort(client, up)
		}
	}()
	var out half
	out.n, out.idle, out.err = r.pipe(client, up)
	if out.err != nil {
		r.abort(client, up)
	}
	wg.Wait()
	res := result{in: in.n, out: out.n, end: "closed"}
	switch {
	case overtime.Load():
		res.end = "max duration"
	case in.idle || out.idle:
		res.end = "idle timeout"
	case r.first != nil:
		res.end, res.err = "error", r.first
	}
	return res
}

// relayState is what the two directions of one connection share.
type relayState struct {
	idle, tick time.Duration
	last       atomic.Int64 // unix nanoseconds of the last byte moved in either direction
	once       sync.Once
	first      error // the error that aborted the relay; written once, before abort closes
	mu         sync.Mutex
}

// abort closes both connections, which ends both directions.
func (r *relayState) abort(a, b net.Conn) {
	r.once.Do(func() {
		_ = a.Close()
		_ = b.Close()
	})
}

// pipe copies src to dst until src ends (then it half-closes dst and returns a nil error),
// an error, or the idle bound.
func (r *relayState) pipe(dst, src net.Conn) (n int64, idle bool, err error) {
	for {
		start := time.Now()
		writeBy := start.Add(r.idle)
		_ = src.SetReadDeadline(start.Add(r.tick))
		_ = dst.SetWriteDeadline(writeBy)
		k, err := io.Copy(dst, src)
		n += k
		now := time.Now()
		if k > 0 {
			r.last.Store(now.UnixNano())
		}
		if err == nil {
			if hc, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = hc.CloseWrite()
			}
			return n, false, nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			r.record(err)
			return n, false, err
		}
		if !now.Before(writeBy) || now.UnixNano()-r.last.Load() >= int64(r.idle) {
			// A write blocked for idle, or nothing moved either way for idle.
			return n, true, err
		}
	}
}

// record keeps the first error of the relay.
func (r *relayState) record(err error) {
	r.mu.Lock()
	if r.first == nil && !errors.Is(err, net.ErrClosed) {
		r.first = err
	}
	r.mu.Unlock()
}
