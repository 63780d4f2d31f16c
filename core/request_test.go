package core

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type recordHook struct {
	name string
	log  *[]string
}

func (h recordHook) BeforeHeader(r *http.Request, hdr http.Header, status int) {
	*h.log = append(*h.log, h.name)
	hdr.Set("X-"+h.name, r.URL.Path)
}

func TestHeaderHooksRunOnceBeforeTheFinalHeader(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		runs  bool
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(201) }, true},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, true},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, true},
		{"1xx then 200", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(200) }, true},
		{"twice", func(w http.ResponseWriter) { w.WriteHeader(200); w.WriteHeader(500) }, true},
		{"nothing", func(w http.ResponseWriter) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			h := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				OnHeader(r, recordHook{"A", &log})
				OnHeader(r, recordHook{"B", &log})
				tt.write(w)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/p", nil))
			want := ""
			if tt.runs {
				want = "A,B"
			}
			if got := strings.Join(log, ","); got != want {
				t.Fatalf("hooks ran %q, want %q", got, want)
			}
			if tt.runs && (rec.Header().Get("X-A") != "/p" || rec.Header().Get("X-B") != "/p") {
				t.Fatalf("headers %v", rec.Header())
			}
		})
	}
}

func TestHeaderHooksAreBoundedAndFree(t *testing.T) {
	var log []string
	h := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range maxHeaderHooks + 2 {
			if ok := OnHeader(r, recordHook{"h", &log}); ok != (i < maxHeaderHooks) {
				t.Errorf("hook %d accepted=%v", i, ok)
			}
		}
		w.WriteHeader(200)
		if OnHeader(r, recordHook{"late", &log}) {
			t.Error("a hook registered after the header was sent")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if len(log) != maxHeaderHooks {
		t.Fatalf("%d hooks ran", len(log))
	}
	// Registering and running a hook costs no allocation: compare with a request without.
	hook := &countHook{}
	with := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		OnHeader(r, hook)
		w.WriteHeader(204)
	}))
	without := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)
	with.ServeHTTP(w, r)
	base := testing.AllocsPerRun(200, func() { without.ServeHTTP(w, r) })
	n := testing.AllocsPerRun(200, func() { with.ServeHTTP(w, r) })
	if n != base || hook.n == 0 {
		t.Fatalf("%v allocations per request with a hook, %v without (hook ran %d times)", n, base, hook.n)
	}
}

type countHook struct{ n int }

func (c *countHook) BeforeHeader(*http.Request, http.Header, int) { c.n++ }

// readErrConn is a connection that reports read errors the way the framing guard does.
type readErrConn struct {
	net.Conn
	onErr func(error)
}

func (c *readErrConn) OnReadError(fn func(error)) { c.onErr = fn }

type countingWatcher struct{ n atomic.Int32 }

func (w *countingWatcher) ClientGone() { w.n.Add(1) }

func TestWatchClient(t *testing.T) {
	newReq := func(proto int) (*http.Request, *readErrConn) {
		c := &readErrConn{}
		ctx := WithConnInfo(context.Background(), c)
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		r.ProtoMajor = proto
		return r, c
	}
	t.Run("end of stream tells the watcher once", func(t *testing.T) {
		r, c := newReq(1)
		w := &countingWatcher{}
		if !WatchClient(r, w) {
			t.Fatal("WatchClient refused an HTTP/1 request on a reporting connection")
		}
		if WatchClient(r, &countingWatcher{}) {
			t.Fatal("a second watcher was accepted")
		}
		c.onErr(os.ErrDeadlineExceeded) // net/http ending its background read: not the client
		if w.n.Load() != 0 {
			t.Fatal("a deadline was taken for the client going away")
		}
		c.onErr(io.EOF)
		c.onErr(io.EOF)
		if w.n.Load() != 1 {
			t.Fatalf("ClientGone ran %d times, want 1", w.n.Load())
		}
		if !UnwatchClient(r, w) {
			t.Fatal("UnwatchClient did not report the client gone")
		}
		if WatchClient(r, &countingWatcher{}) {
			t.Fatal("a watch was accepted after the client went")
		}
	})
	t.Run("unwatched before the client goes", func(t *testing.T) {
		r, c := newReq(1)
		w := &countingWatcher{}
		if !WatchClient(r, w) {
			t.Fatal("WatchClient refused")
		}
		if UnwatchClient(r, w) {
			t.Fatal("gone before any read error")
		}
		c.onErr(syscall.ECONNRESET)
		if w.n.Load() != 0 {
			t.Fatal("an unregistered watcher was told")
		}
	})
	t.Run("HTTP/2 and connections without reports are refused", func(t *testing.T) {
		r, _ := newReq(2)
		if WatchClient(r, &countingWatcher{}) {
			t.Fatal("HTTP/2 request watched (a stream's cancellation is not its connection's)")
		}
		plain := httptest.NewRequest(http.MethodGet, "/", nil)
		if WatchClient(plain, &countingWatcher{}) {
			t.Fatal("request without connection state watched")
		}
	})
}

// TestClientIPCanonical: the client address every guard compares is unmapped and has no
// interface zone, so a prefix such as fe80::/10 or 10.0.0.0/8 contains it.
func TestClientIPCanonical(t *testing.T) {
	for _, tc := range []struct{ remote, want, prefix string }{
		{"[fe80::1%eth0]:1234", "fe80::1", "fe80::/10"},
		{"[::ffff:10.1.2.3]:80", "10.1.2.3", "10.0.0.0/8"},
		{"192.0.2.7:443", "192.0.2.7", "192.0.2.0/24"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		ip := ClientIP(r)
		if ip.String() != tc.want || !netip.MustParsePrefix(tc.prefix).Contains(ip) {
			t.Errorf("ClientIP(%q) = %v, want %s inside %s", tc.remote, ip, tc.want, tc.prefix)
		}
	}
}

// TestBeginRequest: a state BeginRequest made is the request's context; AcquireState fills
// it in without copying the request (once: a nested AcquireState takes its own state),
// ReleaseState leaves it to EndRequest, its Done and Err are its parent's, and once
// recycled it reads as cancelled.
func TestBeginRequest(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := BeginRequest(parent)
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	site := &Site{Label: "a"}
	st, r2 := AcquireState(w, r, site, time.Now())
	if r2 != r || st != ctx || State(r) != st || st.Site != site {
		t.Fatalf("AcquireState copied the request or took another state: %p %p %v", r2, r, st.Site)
	}
	inner, r3 := AcquireState(w, r, site, time.Now())
	if inner == st || r3 == r || State(r3) != inner {
		t.Fatal("a second AcquireState reused the begun state")
	}
	ReleaseState(inner)
	ReleaseState(st)
	if st.Site != site {
		t.Fatal("ReleaseState reset a begun state")
	}
	cancel()
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parent's cancellation did not reach the state")
	}
	if st.Err() != context.Canceled {
		t.Fatalf("Err %v", st.Err())
	}
	EndRequest(ctx)
	if st.Site != nil || st.Err() != context.Canceled {
		t.Fatalf("EndRequest did not reset the state to an ended context: site %v err %v", st.Site, st.Err())
	}
}
