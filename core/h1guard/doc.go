// Package h1guard enforces strict HTTP/1.1 request framing (RFC 9112) on the bytes that
// net/http reads, so that no request can be smuggled through Conduit.
//
// Wrap returns a listener whose connections run a small, allocation-free state machine over
// every byte the server reads. It follows message boundaries (request head, then a body
// framed by Content-Length or chunked coding, including chunk extensions and trailers, then
// the next pipelined request), so every request head on a keep-alive connection is checked,
// not only the first. A violation is refused before net/http sees the offending byte, so
// the request never reaches a handler or an upstream.
//
// # Refusal
//
// The guard writes
//
//	HTTP/1.1 <status> <text>\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: N\r\n\r\n<reason>\n
//
// directly on the connection, half-closes it, drains the client for at most 500 ms (so that
// unread request bytes do not turn the close into a reset that destroys the answer), and
// makes Read return a *net.OpError (Op "read") wrapping an *Error. net/http treats that as a
// plain read failure and closes the connection without writing anything; every later write
// by the server or a handler on that connection is dropped. Options.OnReject is called for
// logs and metrics.
//
// The guard answers only when no other response can be pending:
//   - a bad request head: net/http reads a request only after the previous response was
//     flushed, so the guard answers. When the bad head arrives pipelined behind a request
//     whose handler is still running, net/http's one-byte background read sees it first;
//     the guard ends that read empty and answers at the foreground read that follows the
//     previous response (TestPipelinedBackgroundRead). Pipelined requests are therefore
//     all validated and answered in order: "200, 200, 400, close".
//   - a bad body (chunk framing, trailers) of the first request on the connection, when
//     nothing was written yet: the guard answers and the handler's body read fails (its
//     response is dropped). For a later request, or after a 100 Continue, the connection
//     is just closed.
//   - after a request that asked for an upgrade the connection is just closed.
//
// # Rules (all refused with 400 unless noted)
//
// Request line: exactly method SP request-target SP HTTP-version CRLF. The method is a
// token; one SP each; the version is "HTTP/1.1" or "HTTP/1.0" (HTTP/0.9, HTTP/1.2,
// HTTP/2.0, lower case refused). The whole line is at most Options.MaxRequestLineBytes
// (8 KiB): longer is 414. The target is origin-form ("/..."), absolute-form ("http://" or
// "https://" authority, no userinfo; the Host header must then equal the authority, case
// insensitively, including the port) or asterisk-form for OPTIONS only. Target bytes are
// visible ASCII; raw non-ASCII bytes and malformed percent-encoding are refused. CONNECT is
// refused with 501: a reverse proxy does not tunnel. Leading empty lines are refused
// (net/http refuses them too).
//
// Header section: field names are tokens (no empty name, no whitespace before the colon);
// values are field-vchar, SP, HTAB and obs-text (no CTL, no DEL, no NUL); lines end in CRLF
// exactly: bare LF and bare CR are refused (RFC 9112 allows accepting bare LF; we do not),
// and so is obs-fold (a line starting with SP or HTAB). At most Options.MaxHeaders fields
// (100) and Options.MaxHeaderBytes bytes (64 KiB, request line excluded): more is 431.
//
// Host: exactly one on HTTP/1.1, at most one on HTTP/1.0; the value (possibly empty) uses
// only host characters (letters, digits, "-._~!$&'()*+,;=:[]%").
//
// Content-Length: at most one header, one value: 1 to 18 digits with only surrounding
// whitespace (a trailing HTAB is refused, as llhttp does). Lists and repeats are refused
// even when equal ("5, 5"); RFC 9112 allows collapsing them, refusing is stricter. Signs,
// hex, inner spaces and overflow are refused.
//
// Transfer-Encoding: at most one header whose value is exactly "chunked" (case insensitive,
// surrounding spaces). Every other value is refused with 400 - "chunked, identity",
// "identity", "gzip, chunked" (no other coding is supported; RFC 9112 suggests 501 for
// unknown codings, we answer 400 for all so that every framing refusal looks the same),
// "chunked, chunked", quoted or comma-trailed forms - as are Transfer-Encoding together with
// Content-Length, and Transfer-Encoding in an HTTP/1.0 request.
//
// Chunked body: chunk-size is 1 to 16 hex digits, at most 2^63-1 (no "0x", no sign, no
// whitespace). Chunk extensions follow ";" token ["=" (token / quoted-string)] with no
// whitespace at all (RFC 9112 allows BWS; net/http refuses it, so we refuse it too) and
// at most 1 KiB per chunk line. Chunk data must be followed by CRLF exactly. Trailers are
// parsed like header fields (at most 2 KiB, within net/http's own 4 KiB limit) and must not
// carry Content-Length, Transfer-Encoding, Host, Connection, Upgrade, TE, Trailer,
// Keep-Alive, Proxy-Connection, Expect, Max-Forwards, Content-Encoding, Content-Type,
// Content-Range, Range, Authorization, Proxy-Authorization, Cache-Control or Pragma.
//
// # Pass-through
//
// The guard stops validating a connection for good when:
//   - it starts with the HTTP/2 connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
//     (h2c prior knowledge; the full preface must match, elsewhere PRI is refused);
//   - its first byte is 0x16, a TLS handshake record: the guard was placed under TLS,
//     where it can see nothing useful (see TLS below);
//   - a handler calls Passthrough on the hijacked connection (after answering 101, or when
//     taking the connection over in any other way);
//   - a request carried an Upgrade header and the "upgrade" Connection option, and the
//     very next byte from the client cannot start an HTTP method (it is not a token byte).
//     WebSocket frames start with such a byte. This is safe without knowing whether the
//     server upgraded: if it did not, net/http parses those bytes as a request line, which
//     it refuses because a method must be a token, and closes the connection. Next bytes
//     that can start a method are validated as a request as usual, so a protocol whose
//     client speaks first in ASCII after the 101 needs an explicit Passthrough.
//
// # TLS
//
// The guard must see plaintext, so wrap the listener returned by tls.NewListener. For
// *tls.Conn connections the guarded listener runs the handshake itself (bounded by
// Options.HandshakeTimeout) before Accept returns them: connections that negotiated "h2" by
// ALPN, and failed handshakes, are returned as the *tls.Conn itself (net/http serves HTTP/2,
// or reports the error and answers plain HTTP on a TLS port, as usual); the others are
// guarded and keep ConnectionState, so Request.TLS is set.
//
// # Performance
//
// The parser holds fixed-size buffers only: no allocation per request in steady state
// (TestZeroAllocs), and no allocation at all on the accepted path; a refusal allocates its
// error and answer. BenchmarkGuard measures a typical 300-byte GET head.
package h1guard
