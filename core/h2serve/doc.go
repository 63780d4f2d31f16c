// Package h2serve holds what Conduit puts around net/http's HTTP/2 server to cut its cost per
// request; the HTTP/2 protocol itself (framing, HPACK, flow control, stream limits, rapid
// reset protection, write timeouts) stays net/http's.
//
// # Buffered reads for h2c
//
// net/http's HTTP/2 server reads frames straight from the connection it is given: every
// frame costs two reads (the 9-byte frame header, then the payload). Over TLS these reads are
// served from the TLS record buffer, but on a cleartext (h2c) connection each one is a read
// system call. WrapListener returns a listener whose connections watch the first bytes read:
// once the 24-byte HTTP/2 connection preface has passed, reads smaller than the buffer are
// served from a 4 KiB read buffer, so one system call brings the frames the client has sent
// so far. A connection whose first bytes are not the preface (HTTP/1.x) is passed through
// unbuffered, byte for byte as before.
//
// # Joined writes for h2c
//
// net/http's HTTP/2 server flushes its write buffer whenever its write queue runs empty. A
// response's HEADERS frame is queued (and flushed) before the handler's goroutine queues the
// DATA frame that follows it, so a small response costs two writes to the client, one system
// call each. On an h2c connection of a WrapListener, after the preface, a write that ends with a
// HEADERS frame (or the last CONTINUATION of its block) without END_STREAM is held back: the
// next write goes out together with it, or, if none comes within HoldDelay (1 ms), a timer
// writes it alone. Nothing else is held: a frame that ends a stream, a reset, SETTINGS, PING
// and GOAWAY go out at once, with whatever is held before them. The held bytes (at most 4 KiB)
// are written in order; an error of the timer's write closes the connection and is returned by
// the next write; Close writes them first (waiting at most 10 ms for the client). What a client
// can notice: response headers whose body comes later than 1 ms after them (a slow upstream, a
// streamed response), and 1xx responses, reach it up to 1 ms later. TLS connections are not
// wrapped: net/http hands the *tls.Conn to its HTTP/2 server itself.
//
// # Stack growth of stream handlers
//
// net/http runs every HTTP/2 stream's handler on a new goroutine. Conduit's request
// pipeline then grows that goroutine's stack deep in the call chain (mostly at the upstream
// write), where copying the stack means walking and adjusting every frame. Handler grows the
// stack once, at the shallow top of the handler, to a size that holds the proxy path
// (StackReserve), so that the deep growths do not happen. (BenchmarkStreamGoroutine compares
// this with handing the work to a parked goroutine that kept its stack: about the same cost,
// without the hand-off.)
package h2serve
