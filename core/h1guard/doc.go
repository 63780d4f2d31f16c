// Package h1guard validates HTTP/1.1 request framing (RFC 9112) on the bytes net/http reads,
// so that no request can be smuggled through Conduit.
//
// TODO: full rules; see below.
package h1guard
