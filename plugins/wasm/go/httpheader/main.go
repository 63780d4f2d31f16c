//go:build wasip1

// Command httpheader is an http-wasm guest in plain Go (GOOS=wasip1, -buildmode=c-shared,
// //go:wasmimport and //go:wasmexport; no SDK): it adds the request header X-Go-Uri with
// the request's URI, and the response header X-Go-Guest: 1. Build: `make wasm-guests`
// (plugins/wasm/Makefile).
package main

import "unsafe"

//go:wasmimport http_handler get_uri
func getURI(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler enable_features
func enableFeatures(features uint32) uint32

// Header kinds and features of the http-wasm ABI.
const (
	kindRequest    = 0
	kindResponse   = 1
	bufferResponse = 2
)

var uri [2048]byte

func setHeader(kind uint32, name string, value []byte) {
	n := []byte(name)
	setHeaderValue(kind, unsafe.Pointer(&n[0]), uint32(len(n)), unsafe.Pointer(unsafe.SliceData(value)), uint32(len(value)))
}

//go:wasmexport handle_request
func handleRequest() uint64 {
	n := getURI(unsafe.Pointer(&uri[0]), uint32(len(uri)))
	if n > uint32(len(uri)) {
		n = uint32(len(uri)) // longer than the buffer: the host wrote nothing
		return 1
	}
	setHeader(kindRequest, "X-Go-Uri", uri[:n])
	enableFeatures(bufferResponse)
	return 1 // next, with context 0
}

//go:wasmexport handle_response
func handleResponse(reqCtx uint32, isError uint32) {
	setHeader(kindResponse, "X-Go-Guest", []byte("1"))
}

func main() {}
