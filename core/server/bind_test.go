package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// TestSiteBind starts real listeners on configured ports: a site with `bind: 127.0.0.1`
// answers on 127.0.0.1 only, while a site without a bind answers on another loopback
// address too.
func TestSiteBind(t *testing.T) {
	bound, open := testtool.FreePort(t), testtool.FreePort(t)
	doc, err := config.Parse(fmt.Appendf(nil, "sites:\n  - port: %d\n    bind: 127.0.0.1\n  - port: %d\n", bound, open), config.FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{})
	g, d := server.Build(context.Background(), doc, srv.BuildOptions())
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	if got, want := srv.Addr(bound).String(), fmt.Sprintf("127.0.0.1:%d", bound); got != want {
		t.Fatalf("listener address %s, want %s", got, want)
	}
	cases := []struct {
		addr      string
		reachable bool
	}{
		{fmt.Sprintf("127.0.0.1:%d", bound), true},
		{fmt.Sprintf("127.0.0.2:%d", bound), false},
		{fmt.Sprintf("127.0.0.1:%d", open), true},
		{fmt.Sprintf("127.0.0.2:%d", open), true},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range cases {
		res, err := client.Get("http://" + tc.addr + "/")
		if err == nil {
			res.Body.Close()
		}
		if got := err == nil; got != tc.reachable {
			t.Errorf("%s reachable = %v (err %v), want %v", tc.addr, got, err, tc.reachable)
		}
	}
}

// TestSiteBindValidation checks the bind values and the rule that one listener (the sites of
// a port, the TLS sites of one tls.httpRedirectPort) has one bind.
func TestSiteBindValidation(t *testing.T) {
	tlsSite := func(port int, bind string) string {
		return fmt.Sprintf("  - port: %d\n    bind: %q\n    tls: { acme: { email: a@example.com }, httpRedirectPort: 8080 }\n", port, bind)
	}
	cases := []struct {
		name, src, err string
	}{
		{"ipv4", "bind: 127.0.0.1\nport: 8080\n", ""},
		{"ipv6 in brackets", "bind: \"[::1]\"\nport: 8080\n", ""},
		{"host name", "bind: localhost\nport: 8080\n", "error at bind: must be an IP address"},
		{"address with port", "bind: \"127.0.0.1:80\"\nport: 8080\n", "error at bind: must be an IP address"},
		{"same bind, two spellings", "sites:\n  - {port: 8080, host: a.test, bind: \"::1\"}\n  - {port: 8080, host: b.test, bind: \"0:0:0:0:0:0:0:1\"}\n", ""},
		{"different binds on one port", "sites:\n  - {port: 8080, host: a.test, bind: 127.0.0.1}\n  - {port: 8080, host: b.test, bind: 127.0.0.2}\n",
			"error at sites[1].bind: is 127.0.0.2 but sites[0] binds port 8080 to 127.0.0.1"},
		{"bind and no bind on one port", "sites:\n  - {port: 8080, host: a.test, bind: 127.0.0.1}\n  - {port: 8080, host: b.test}\n",
			"error at sites[1].bind: is every interface but sites[0] binds port 8080 to 127.0.0.1"},
		{"different binds on one redirect port", "sites:\n" + tlsSite(8443, "127.0.0.1") + tlsSite(9443, "127.0.0.2"),
			"error at sites[1].bind: is 127.0.0.2 but sites[0], which also redirects from port 8080, binds to 127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build(tc.src, config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if tc.err == "" {
				if d.HasErrors() {
					t.Fatal(d.Err())
				}
				return
			}
			if !d.HasErrors() || !strings.Contains(d.Err().Error(), tc.err) {
				t.Fatalf("got %v, want %q", d.Err(), tc.err)
			}
		})
	}
}

// TestSiteBindIsCold: moving a listener to another address needs a restart, as adding a
// port does.
func TestSiteBindIsCold(t *testing.T) {
	srv := servertest.Start(t, "sites:\n  - {port: 8080, bind: 127.0.0.1}\n")
	g, d, err := servertest.Build("sites:\n  - {port: 8080, bind: 127.0.0.2}\n", config.FormatYAML)
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	err = srv.Swap(g)
	var cold *server.ColdFieldsError
	if !errors.As(err, &cold) || !strings.Contains(err.Error(), "sites[0].bind") {
		t.Fatalf("changed bind: %v, want a cold-field error naming sites[0].bind", err)
	}
	c, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil || !strings.HasPrefix(srv.HostPort(8080), "127.0.0.1:") {
		t.Fatalf("the running listener moved: %s %v", srv.HostPort(8080), err)
	}
	c.Close()
}
