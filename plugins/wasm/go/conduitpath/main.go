//go:build wasip1

// Command conduitpath is a guest of the conduit ABI in plain Go (GOOS=wasip1,
// -buildmode=c-shared): it copies the request's path into the request header
// x-go-path. A Go guest starts a Go runtime when it is instantiated, so run it with
// `instances: reuse` (docs/wasm.md). Build: `make wasm-guests` (plugins/wasm/Makefile).
package main

import "unsafe"

//go:wasmimport conduit conduit_get_path
func getPath(buf unsafe.Pointer, limit int32) int32

//go:wasmimport conduit conduit_set_request_header
func setRequestHeader(name unsafe.Pointer, nameLen int32, value unsafe.Pointer, valueLen int32)

var path [2048]byte

var name = []byte("x-go-path")

//go:wasmexport on_request
func onRequest() int32 {
	n := getPath(unsafe.Pointer(&path[0]), int32(len(path)))
	if n <= 0 {
		return 0
	}
	setRequestHeader(unsafe.Pointer(&name[0]), int32(len(name)), unsafe.Pointer(&path[0]), n)
	return 0
}

func main() {}
