// Command floor is three reference proxies for conduit-bench's floor rows, so that Conduit's
// numbers can be read against what Go itself costs on the same machine in the same run:
//
//   - -mode gostd: net/http's server and httputil.ReverseProxy with a keep-alive
//     Transport (the reference's "Go stdlib" peer);
//   - -mode raw: no net/http server and no Transport: one goroutine per client connection
//     reads a request with http.ReadRequest, writes it to a pooled upstream connection,
//     reads the answer with http.ReadResponse and writes it back. It supports only what the
//     benchmark sends (bodyless keep-alive GETs answered with a Content-Length) and is the
//     lowest a goroutine-per-connection Go proxy can go; it is not a proxy to use;
//   - -mode loop: the same minimal proxy on epoll event loops, GOMAXPROCS of them, each with
//     its own SO_REUSEPORT listener and its own upstream keep-alive pool (package evloop).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/conduitproxy/conduit/cmd/conduit-bench/floor/evloop"
)

func main() {
	mode := flag.String("mode", "gostd", "gostd, raw or loop")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve HTTP/1.1 on")
	upstream := flag.String("upstream", "", "host:port of the upstream")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("floor: -upstream is required")
	}
	switch *mode {
	case "gostd":
		u := &url.URL{Scheme: "http", Host: *upstream}
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
		log.Fatal(http.ListenAndServe(*listen, rp))
	case "raw":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		p := &pool{addr: *upstream}
		for {
			c, err := ln.Accept()
			if err != nil {
				log.Fatal(err)
			}
			go p.serve(c)
		}
	case "loop":
		s, err := evloop.Listen(*listen, *upstream, runtime.GOMAXPROCS(0))
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(s.Serve())
	default:
		fmt.Fprintf(os.Stderr, "floor: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
}

// pool keeps idle upstream connections.
type pool struct {
	addr string
	mu   sync.Mutex
	idle []*upConn
}

type upConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (p *pool) get() (*upConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		u := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return u, nil
	}
	p.mu.Unlock()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

func (p *pool) put(u *upConn) {
	p.mu.Lock()
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

// serve proxies the requests of one client connection until it closes or fails.
func (p *pool) serve(c net.Conn) {
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		u, err := p.get()
		if err != nil {
			return
		}
		if err := p.exchange(u, req, bw); err != nil {
			u.c.Close()
			return
		}
		p.put(u)
	}
}

// exchange sends req upstream and writes the answer to the client.
func (p *pool) exchange(u *upConn, req *http.Request, bw *bufio.Writer) error {
	fmt.Fprintf(u.bw, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
	for k, vv := range req.Header {
		for _, v := range vv {
			fmt.Fprintf(u.bw, "%s: %s\r\n", k, v)
		}
	}
	u.bw.WriteString("\r\n")
	if err := u.bw.Flush(); err != nil {
		return err
	}
	resp, err := http.ReadResponse(u.br, req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode) + "\r\n")
	resp.Header.Del("Connection")
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Write(bw)
	bw.WriteString("\r\n")
	bw.Write(body)
	return bw.Flush()
}
