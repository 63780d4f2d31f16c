package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestUpstreamUserAgent checks the User-Agent the upstream receives on both upstream
// clients: a small bodyless or Content-Length request takes the h1Client, a chunked body
// takes net/http's Transport. Neither adds a User-Agent of its own ("Go-http-client/1.1"),
// whether the client sent none or requestTransform removed the client's.
func TestUpstreamUserAgent(t *testing.T) {
	up, ch := echoUpstream(t, "a")
	keep := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	strip := servertest.Start(t, fmt.Sprintf("port: 8080\nrequestTransform: { removeHeaders: [user-agent] }\nproxy: %q\n", up.URL))
	requests := map[string]string{
		"h1Client": "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n",
		"Transport": "POST %s HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n" +
			"1\r\nb\r\n0\r\n\r\n",
	}
	cases := []struct {
		srv      *servertest.Server
		path, ua string
		want     string
	}{
		{keep, "/keep", "", ""},
		{keep, "/keep", "User-Agent: ua-test\r\n", "ua-test"},
		{strip, "/strip", "User-Agent: ua-test\r\n", ""},
	}
	for client, format := range requests {
		for _, tc := range cases {
			status := rawRequest(t, tc.srv.HostPort(8080), fmt.Sprintf(format, tc.path, tc.ua))
			if status != http.StatusOK {
				t.Fatalf("%s %s %q: status %d", client, tc.path, tc.ua, status)
			}
			got := <-ch
			if vv, ok := got.Header["User-Agent"]; tc.want == "" && ok || tc.want != "" && (len(vv) != 1 || vv[0] != tc.want) {
				t.Errorf("%s %s, client sent %q: upstream User-Agent %q, want %q", client, tc.path, tc.ua, vv, tc.want)
			}
		}
	}
}

// rawRequest writes raw on a new connection to addr and returns the response's status.
func rawRequest(t *testing.T, addr, raw string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
