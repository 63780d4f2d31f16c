package h2serve

import (
	"net/http"
	"runtime"
)

// StackReserve is how many bytes of stack Handler reserves at the top of an HTTP/2 stream's
// handler goroutine. The runtime then grows the stack once, from a shallow call chain, to
// 16 KiB (the largest size it serves from its per-processor stack cache); the proxy path
// fits in that (docs/benchmarks.md, "HTTP/2 per request").
const StackReserve = 12 << 10

// Handler returns h with the stack of HTTP/2 requests' goroutines grown up front (see the
// package documentation). HTTP/1 requests, whose connection goroutine keeps its stack from
// one request to the next, go to h directly.
func Handler(h http.Handler) http.Handler { return &handler{h} }

type handler struct{ h http.Handler }

// ServeHTTP implements http.Handler.
func (x *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 {
		growStack()
	}
	x.h.ServeHTTP(w, r)
}

// growStack has a StackReserve frame: calling it makes the runtime grow the goroutine's
// stack to hold it, while the call chain above is short.
//
//go:noinline
func growStack() {
	var reserve [StackReserve]byte
	runtime.KeepAlive(&reserve)
}
