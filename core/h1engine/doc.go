// Package h1engine serves HTTP/1.x without net/http's server, on connections that the
// framing guard (core/h1guard) validates. It is Conduit's HTTP/1 engine when
// global.http1Engine is "conduit" (docs/architecture.md).
//
// # What it relies on
//
// The guard refuses, before the engine reads them, every request whose framing is not
// strict RFC 9112: one SP-separated request line with HTTP/1.0 or HTTP/1.1, CRLF line ends,
// token field names, field values without CTLs, one Host, one Content-Length or
// Transfer-Encoding "chunked" and never both. The engine therefore splits a request head
// without validating it again; what net/http checks beyond the guard it checks too (URL
// syntax, Expect, trailer declarations, the head size limit).
//
// # What the handler gets
//
// The *http.Request and http.ResponseWriter behave as net/http's for what Conduit's modules
// use, and the differential tests (TestDifferentialWriter, TestDifferentialCorpus,
// FuzzEngines) compare both engines byte stream by byte stream:
//   - Request: Method, URL, Proto, Header (canonical keys, Host removed, Pragma: no-cache
//     adds Cache-Control), Host, ContentLength, TransferEncoding, Close, Trailer (declared
//     keys, filled after the body), RemoteAddr, RequestURI, TLS, and a context cancelled
//     when the handler returns or the client goes away.
//   - Response: the status line and header as net/http writes them (invalid names dropped,
//     CR and LF in values turned into spaces), Date, Content-Type sniffing, Content-Length
//     for a handler that writes at most 2 KiB and returns, chunked coding otherwise (HTTP/1.0:
//     close-delimited), HEAD, 1xx (WriteHeader(103)), 204/304 without body, trailers
//     (declared or http.TrailerPrefix), Expect: 100-continue (sent at the first body read;
//     417 for other expectations), Flush, Hijack (with the buffered bytes),
//     http.ResponseController's FlushError, SetReadDeadline, SetWriteDeadline and
//     EnableFullDuplex. After the handler, up to 256 KiB of unread body is drained to keep
//     the connection; more closes it.
//   - "OPTIONS *" is answered 200 by the engine, as net/http does.
//
// One difference: an HTTP/2 preface ("PRI * HTTP/2.0") on a connection the guard passes
// through is answered 505 (net/http hands it to the handler as a request). Ports with h2c
// keep net/http (core/server).
//
// # One goroutine per connection
//
// A connection's goroutine reads a request, runs the handler and writes the response
// through a pooled 4 KiB writer; the response header is serialized at WriteHeader (no header
// clone). A request's URL (origin-form targets without escapes, parsed without net/url),
// header value storage, body reader and context share one allocation (reqMem); the context
// is the engine's own (reqContext) unless the connection's context can be cancelled. Nothing reads the connection while the handler runs: on Linux, a client that goes
// away is reported by one epoll instance per server that watches every connection for
// EPOLLRDHUP/EPOLLHUP/EPOLLERR (two epoll_ctl calls per connection, none per request). A
// half-close counts as gone once the request body was read and nothing the client sent is
// left unread (what net/http's background read would see). The report reaches the
// connection's read-error callback (core.WithConnInfo, hence core.WatchClient) and cancels
// the request context. Elsewhere than Linux no watcher runs: the context ends when the
// handler returns.
//
// # Server behaviour
//
// ReadHeaderTimeout bounds a request head from its first byte (unless the whole head was
// already buffered), IdleTimeout the wait for the next request; both may fire up to
// min(1s, timeout/4) late, never early, because a connection's read deadline is re-armed at
// most that often (armReadDeadline); the send timeout is the guard's (h1guard.Options.WriteTimeout). ConnState
// reports net/http's states. Shutdown closes the listeners, then idle connections (and new
// ones idle for 5 s) until none is left; requests in flight finish with Connection: close.
package h1engine
