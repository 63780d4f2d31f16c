package jwtverify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock    { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// jwksServer serves a JWKS document that the test can swap, counts fetches, and can fail or
// hold requests.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	body    []byte
	status  int
	hold    chan struct{} // when non-nil, requests wait for it to close
}

func newJWKSServer(t *testing.T, file string) *jwksServer {
	s := &jwksServer{status: 200}
	s.set(t, file)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		hold, body, status := s.hold, s.body, s.status
		s.mu.Unlock()
		if hold != nil {
			<-hold
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, file string) {
	b, err := os.ReadFile(joseDir + file)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body, s.status = b, 200
	s.mu.Unlock()
}

func (s *jwksServer) fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestJWKSSharedFirstFetch: many concurrent first requests cause exactly one fetch.
func TestJWKSSharedFirstFetch(t *testing.T) {
	srv := newJWKSServer(t, "jwks.json")
	hold := make(chan struct{})
	srv.hold = hold
	clock := newClock(time.Unix(1700000000, 0))
	j := NewJWKS(srv.URL, time.Hour, nil, clock.Now, nil)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := j.Lookup(context.Background(), "rsa-1", "RS256")
			errs <- err
		}()
	}
	waitFor(t, "the first fetch", func() bool { return srv.fetches.Load() >= 1 })
	srv.mu.Lock()
	srv.hold = nil
	srv.mu.Unlock()
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches for %d concurrent first requests, want 1", got, n)
	}
}

// TestJWKSRefreshAndRotation: keys older than the refresh interval are refreshed in the
// background (the old keys keep serving meanwhile), and the rotated set takes over.
func TestJWKSRefreshAndRotation(t *testing.T) {
	srv := newJWKSServer(t, "jwks.json")
	clock := newClock(time.Unix(1700000000, 0))
	j := NewJWKS(srv.URL, 2*time.Minute, nil, clock.Now, nil)
	ctx := context.Background()
	if _, err := j.Lookup(ctx, "rsa-1", "RS256"); err != nil {
		t.Fatal(err)
	}
	// Fresh keys: no fetch, and an unknown kid inside the retry interval does not fetch.
	clock.Add(10 * time.Second)
	if _, err := j.Lookup(ctx, "rsa-2", "RS256"); !errors.Is(err, ErrUnknownKid) {
		t.Fatalf("rsa-2 before rotation: %v", err)
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1 (throttled unknown kid)", got)
	}
	// The IdP rotates; after the refresh interval a lookup is served from the old keys and
	// triggers a background refresh.
	srv.set(t, "jwks-rotated.json")
	clock.Add(2 * time.Minute)
	if _, err := j.Lookup(ctx, "rsa-1", "RS256"); err != nil {
		t.Fatalf("stale keys must keep serving during the refresh: %v", err)
	}
	waitFor(t, "the background refresh", func() bool { return srv.fetches.Load() == 2 && j.Keys() != nil && hasKid(j.Keys(), "rsa-2") })
	if _, err := j.Lookup(ctx, "rsa-2", "RS256"); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if _, err := j.Lookup(ctx, "rsa-1", "RS256"); !errors.Is(err, ErrUnknownKid) {
		t.Fatalf("retired key: %v", err)
	}
}

// TestJWKSUnknownKidFetch: an unknown kid past the retry interval fetches once and finds the
// new key without waiting for the refresh interval.
func TestJWKSUnknownKidFetch(t *testing.T) {
	srv := newJWKSServer(t, "jwks.json")
	clock := newClock(time.Unix(1700000000, 0))
	j := NewJWKS(srv.URL, time.Hour, nil, clock.Now, nil)
	ctx := context.Background()
	if _, err := j.Lookup(ctx, "rsa-1", "RS256"); err != nil {
		t.Fatal(err)
	}
	srv.set(t, "jwks-rotated.json")
	clock.Add(RetryInterval)
	if _, err := j.Lookup(ctx, "rsa-2", "RS256"); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
}

// TestJWKSFailureKeepsLastGood: failing refreshes keep the last good keys for up to 24 h past
// the refresh interval, retried at most once per 30 s; after that the keys are gone.
func TestJWKSFailureKeepsLastGood(t *testing.T) {
	srv := newJWKSServer(t, "jwks.json")
	clock := newClock(time.Unix(1700000000, 0))
	refresh := time.Hour
	j := NewJWKS(srv.URL, refresh, nil, clock.Now, nil)
	ctx := context.Background()
	if _, err := j.Lookup(ctx, "ec-256", "ES256"); err != nil {
		t.Fatal(err)
	}
	srv.fail(http.StatusInternalServerError)
	clock.Add(refresh)
	for i := 0; i < 5; i++ {
		if _, err := j.Lookup(ctx, "ec-256", "ES256"); err != nil {
			t.Fatalf("last good keys must serve: %v", err)
		}
	}
	waitFor(t, "the failed refresh", func() bool { return srv.fetches.Load() == 2 && !j.fetching() })
	for i := 0; i < 5; i++ {
		_, _ = j.Lookup(ctx, "ec-256", "ES256")
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d within the retry interval, want 2", got)
	}
	clock.Add(RetryInterval)
	_, _ = j.Lookup(ctx, "ec-256", "ES256")
	waitFor(t, "the throttled retry", func() bool { return srv.fetches.Load() == 3 && !j.fetching() })
	// Just inside the grace window the keys still serve; past it they are gone.
	clock.Add(StaleGrace - RetryInterval - time.Second)
	if _, err := j.Lookup(ctx, "ec-256", "ES256"); err != nil {
		t.Fatalf("inside the 24 h grace: %v", err)
	}
	waitFor(t, "no fetch running", func() bool { return !j.fetching() })
	clock.Add(2 * time.Second)
	if _, err := j.Lookup(ctx, "ec-256", "ES256"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("past the grace: %v", err)
	}
	// Recovery: the IdP answers again; after the retry interval keys come back.
	srv.set(t, "jwks.json")
	clock.Add(RetryInterval)
	if _, err := j.Lookup(ctx, "ec-256", "ES256"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestJWKSFirstFetchFails: a failed first fetch gives ErrKeysUnavailable, and the next
// attempt waits for the retry interval.
func TestJWKSFirstFetchFails(t *testing.T) {
	srv := newJWKSServer(t, "jwks.json")
	srv.fail(http.StatusBadGateway)
	clock := newClock(time.Unix(1700000000, 0))
	j := NewJWKS(srv.URL, time.Hour, nil, clock.Now, nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := j.Lookup(ctx, "rsa-1", "RS256"); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
	srv.set(t, "jwks.json")
	clock.Add(RetryInterval)
	if _, err := j.Lookup(ctx, "rsa-1", "RS256"); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSRejectsBadDocuments(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON": "{", "no keys": `{"keys":[]}`, "only oct": `{"keys":[{"kty":"oct","k":"AQ"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
			defer srv.Close()
			j := NewJWKS(srv.URL, time.Hour, nil, nil, nil)
			if _, err := j.Lookup(context.Background(), "", "RS256"); !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func hasKid(keys []*Key, kid string) bool {
	for _, k := range keys {
		if k.Kid == kid {
			return true
		}
	}
	return false
}
