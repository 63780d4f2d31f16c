package server_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// bigBodySize is larger than the loopback socket buffers of both ends together.
const bigBodySize = 32 << 20

type bigSite struct{}

func (bigSite) Endpoints() []core.Endpoint {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	return []core.Endpoint{{Path: "/__big__", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for n := 0; n < bigBodySize; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})}}
}

var registerBigBody = sync.OnceFunc(func() {
	core.Register(core.Module{
		ID: "test.server.bigbody", Feature: "testbigbody", SiteKeys: []string{"testBigBody"},
		SiteRoles: core.RoleEndpoints,
		Site:      func(*core.SiteContext) core.SiteInstance { return bigSite{} },
	})
})

// h2cDownload opens an h2c connection that grants the whole body in flow-control window
// up front (so nothing stalls at the HTTP/2 level), asks for /__big__, waits pause without
// reading the socket, then reads DATA until the stream or the connection ends. It returns the
// body bytes read and how it ended.
func h2cDownload(t *testing.T, addr string, pause time.Duration) (int, ending) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	const window = 1<<31 - 1
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, window-65535); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "localhost"}, {":path", "/__big__"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Conduit neither sent the body nor closed the connection within 20 s (%d bytes)", n)
			}
			return n, connClosed
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			n += len(f.Data())
			if f.StreamEnded() {
				return n, streamEnded
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			return n, streamReset
		case *http2.GoAwayFrame:
			return n, goAway
		}
	}
}

// ending is how an h2cDownload ended.
type ending string

const (
	streamEnded ending = "stream ended"
	streamReset ending = "stream reset"
	goAway      ending = "GOAWAY"
	connClosed  ending = "connection closed"
)

// TestH2CSendTimeoutOnTheConnection: an h2c client that has granted all the window it takes
// but stops reading its socket loses the connection after global.clientSendTimeoutMs (the
// framing guard's write deadline bounds h2c connection writes), while a reading client gets
// the whole body. (The stream's own write deadline cannot help there: its RST_STREAM waits
// behind the blocked connection write.)
func TestH2CSendTimeoutOnTheConnection(t *testing.T) {
	registerBigBody()
	srv := servertest.Start(t, "global: { clientSendTimeoutMs: 300 }\nsites:\n  - port: 8080\n    http2: { h2c: true }\n    testBigBody: true\n")
	for _, tc := range []struct {
		name  string
		pause time.Duration
		want  ending
	}{
		{"reading client", 0, streamEnded},
		// A stalled connection write can only end with the connection; a stream reset read
		// here would mean the bound did not fire before the client read again. The pause is
		// ten times the timeout so that a loaded machine's late timers do not matter.
		{"client stops reading", 3 * time.Second, connClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, got := h2cDownload(t, srv.HostPort(8080), tc.pause)
			if got != tc.want || (got == streamEnded && n != bigBodySize) {
				t.Fatalf("read %d of %d bytes, %s; want %s", n, bigBodySize, got, tc.want)
			}
		})
	}
}
