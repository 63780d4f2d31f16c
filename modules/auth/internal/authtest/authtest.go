// Package authtest has helpers for the auth modules' integration tests: an upstream that
// records what reached it, a small request helper, and a timer for comparisons.
package authtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Upstream is a real HTTP server that records the headers of every request it received.
type Upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

// NewUpstream starts an upstream answering 200 "ok" (closed when the test ends).
func NewUpstream(t testing.TB) *Upstream {
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(r.Context()))
		u.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

// Count is the number of requests received.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// Last returns the last request received (nil if none).
func (u *Upstream) Last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return nil
	}
	return u.seen[len(u.seen)-1]
}

// Response is what Do returns.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends a request with the given headers ("Name: value" strings) and reads the answer.
func Do(t testing.TB, method, url string, headers ...string) Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Get is Do with GET.
func Get(t testing.TB, url string, headers ...string) Response {
	t.Helper()
	return Do(t, http.MethodGet, url, headers...)
}

// Medians runs a and b n times each, alternately, and returns the median duration of each.
// For timing comparisons on a busy machine: alternating makes both see the same load, and
// the median ignores a single slow run.
func Medians(n int, a, b func()) (time.Duration, time.Duration) {
	da := make([]time.Duration, 0, n)
	db := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		a()
		mid := time.Now()
		b()
		da = append(da, mid.Sub(start))
		db = append(db, time.Since(mid))
	}
	slices.Sort(da)
	slices.Sort(db)
	return da[n/2], db[n/2]
}
