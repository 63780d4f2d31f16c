package h1engine

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/h1guard"
)

// BenchmarkEngines measures a keep-alive GET with a small answer on one connection, with
// core.WithConnInfo installed as in core/server, for both engines (one request in flight,
// client in the same process: compare the engines, not absolute numbers).
func BenchmarkEngines(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Request-Id", "abc")
		_, _ = io.WriteString(w, "hello, world\n")
	})
	req := []byte("GET /bench?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
	for _, engine := range engines {
		b.Run(engine, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			gl := h1guard.Wrap(ln, h1guard.Options{})
			if engine == "conduit" {
				srv := &Server{Handler: h, ConnContext: core.WithConnInfo, RequestContext: core.BeginRequest, EndRequestContext: core.EndRequest}
				go func() { _ = srv.Serve(gl) }()
				defer srv.Close()
			} else {
				srv := &http.Server{Handler: h, ConnContext: core.WithConnInfo}
				go func() { _ = srv.Serve(gl) }()
				defer srv.Close()
			}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			tp := textproto.NewReader(br)
			body := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := tp.ReadLine(); err != nil {
					b.Fatal(err)
				}
				hdr, err := tp.ReadMIMEHeader()
				if err != nil {
					b.Fatal(err)
				}
				n, _ := strconv.Atoi(hdr.Get("Content-Length"))
				if _, err := io.ReadFull(br, body[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
