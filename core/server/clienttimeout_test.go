package server_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestClientTimeoutSettings checks the defaults of global.clientBodyTimeoutMs and
// global.clientSendTimeoutMs, 0 as "off", and the errors for bad values.
func TestClientTimeoutSettings(t *testing.T) {
	cases := []struct {
		name       string
		global     string
		body, send time.Duration
		err        string
	}{
		{name: "defaults", global: "{}", body: 60 * time.Second, send: 60 * time.Second},
		{name: "set", global: "{ clientBodyTimeoutMs: 1500, clientSendTimeoutMs: 250 }", body: 1500 * time.Millisecond, send: 250 * time.Millisecond},
		{name: "off", global: "{ clientBodyTimeoutMs: 0, clientSendTimeoutMs: 0 }"},
		{name: "negative", global: "{ clientBodyTimeoutMs: -1 }", err: "global.clientBodyTimeoutMs"},
		{name: "not a number", global: "{ clientSendTimeoutMs: soon }", err: "global.clientSendTimeoutMs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, d, err := servertest.Build("global: "+tc.global+"\nsites:\n  - port: 8080\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if tc.err != "" {
				if !d.HasErrors() || !strings.Contains(d.Err().Error(), "error at "+tc.err+":") {
					t.Fatalf("want an error at %s, got %v", tc.err, d.Err())
				}
				return
			}
			if d.HasErrors() {
				t.Fatal(d.Err())
			}
			if got := g.Global.ClientBodyTimeout(); got != tc.body {
				t.Errorf("body timeout %v, want %v", got, tc.body)
			}
			if got := g.Global.ClientSendTimeout(); got != tc.send {
				t.Errorf("send timeout %v, want %v", got, tc.send)
			}
		})
	}
}

// TestClientSendTimeoutIsCold: the send timeout belongs to the listeners, so a reload that
// changes it is refused, while the body timeout reloads.
func TestClientSendTimeoutIsCold(t *testing.T) {
	srv := servertest.Start(t, "global: { clientSendTimeoutMs: 1000, clientBodyTimeoutMs: 1000 }\nsites:\n  - port: 8080\n")
	build := func(src string) *server.Generation {
		g, d, err := servertest.Build(src, config.FormatYAML)
		if err != nil || d.HasErrors() {
			t.Fatalf("%v %v", err, d.Err())
		}
		return g
	}
	err := srv.Swap(build("global: { clientSendTimeoutMs: 2000, clientBodyTimeoutMs: 1000 }\nsites:\n  - port: 8080\n"))
	var cold *server.ColdFieldsError
	if !errors.As(err, &cold) || !strings.Contains(err.Error(), "global.clientSendTimeoutMs") {
		t.Fatalf("changed send timeout: %v, want a cold-field error naming it", err)
	}
	g := build("global: { clientSendTimeoutMs: 1000, clientBodyTimeoutMs: 2000 }\nsites:\n  - port: 8080\n")
	if err := srv.Swap(g); err != nil {
		t.Fatalf("changed body timeout: %v", err)
	}
}
