package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// seqUpstream is a real HTTP/1.1 upstream on 127.0.0.1 whose response to a request with
// "X-Seq: n" carries n in a field named after it (X-Field-n: n) and in X-Seq, a body "n"
// on paths under /body and none otherwise; every head is one the proxy parses on its fast
// path (h1response.go), whose header map is the upstream connection's, reused.
func seqUpstream(t *testing.T) string {
	t.Helper()
	return listenRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			seq := req.Header.Get("X-Seq")
			body := ""
			if strings.HasPrefix(req.URL.Path, "/body") {
				body = seq
			}
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Seq: %s\r\nX-Field-%s: %s\r\nContent-Length: %d\r\n\r\n%s",
				seq, seq, seq, len(body), body)
			if err != nil {
				return
			}
		}
	})
}

// TestFastResponseReusedHeader sends requests through a real Conduit, from several clients
// at once, answered alternately with and without a body: each client must get exactly its
// own response's fields, never one left in the reused map by an earlier response.
func TestFastResponseReusedHeader(t *testing.T) {
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", seqUpstream(t)))
	const clients, perClient = 6, 150
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for ci := 0; ci < clients; ci++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.HostPort(8080))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i := 0; i < perClient; i++ {
				seq := fmt.Sprintf("%d-%d", ci, i)
				path := "/empty"
				if i%2 == 0 {
					path = "/body"
				}
				if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Seq: %s\r\n\r\n", path, seq); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if err := checkSeqResponse(resp, string(b), seq, path); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkSeqResponse checks that resp is seqUpstream's answer to seq on path and carries no
// field of another answer.
func checkSeqResponse(resp *http.Response, body, seq, path string) error {
	wantBody := ""
	if path == "/body" {
		wantBody = seq
	}
	if resp.StatusCode != http.StatusOK || body != wantBody {
		return fmt.Errorf("request %s %s: status %d, body %q, want 200 and %q", seq, path, resp.StatusCode, body, wantBody)
	}
	if got := resp.Header.Values("X-Seq"); len(got) != 1 || got[0] != seq {
		return fmt.Errorf("request %s %s: X-Seq %q", seq, path, got)
	}
	field := http.CanonicalHeaderKey("X-Field-" + seq)
	for k, vv := range resp.Header {
		if strings.HasPrefix(k, "X-Field-") && (k != field || len(vv) != 1 || vv[0] != seq) {
			return fmt.Errorf("request %s %s: response has %s: %q from another response", seq, path, k, vv)
		}
	}
	if resp.Header.Get(field) != seq {
		return fmt.Errorf("request %s %s: %s missing", seq, path, field)
	}
	return nil
}
