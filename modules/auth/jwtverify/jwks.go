package jwtverify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// JWKS caching rules (docs/auth.md, "jwtAuth"):
//   - keys are fetched on the first request that needs them; concurrent first requests
//     share one fetch;
//   - keys older than the refresh interval are refreshed in the background while the old
//     ones keep serving;
//   - when fetches fail, the last good keys stay valid for up to StaleGrace past the refresh
//     interval, and fetches are retried at most once per RetryInterval;
//   - a token whose kid is unknown triggers one fetch (subject to the same throttle), so a
//     rotated key is picked up without waiting for the refresh interval.
const (
	// RetryInterval throttles fetches after a failure (and unknown-kid fetches).
	RetryInterval = 30 * time.Second
	// StaleGrace is how long past the refresh interval the last good keys stay valid.
	StaleGrace = 24 * time.Hour
	// MinRefresh is the smallest accepted refresh interval.
	MinRefresh = 60 * time.Second
	// FetchTimeout bounds one JWKS fetch.
	FetchTimeout = 10 * time.Second
	// MaxJWKSBytes bounds a JWKS document.
	MaxJWKSBytes = 1 << 20
)

// ErrKeysUnavailable is returned when no usable keys are at hand (first fetch failed, or
// the last good keys are too old).
var ErrKeysUnavailable = errors.New("JWKS keys unavailable")

type keySet struct {
	keys    []*Key
	fetched time.Time
}

// JWKS is a cached, refreshed JSON Web Key Set fetched from a URL. It is safe for
// concurrent use; lookups on the hot path are one atomic load and a short slice scan.
type JWKS struct {
	url     string
	client  *http.Client
	refresh time.Duration
	now     func() time.Time
	log     *slog.Logger

	cur atomic.Pointer[keySet]

	mu          sync.Mutex
	flight      chan struct{} // closed when the running fetch ends; nil when none runs
	lastAttempt time.Time     // start of the last fetch
	lastErr     error
	attempted   bool
}

// NewJWKS returns a cache for url. Nothing is fetched until the first lookup. client nil
// means a client with FetchTimeout; now nil means time.Now.
func NewJWKS(url string, refresh time.Duration, client *http.Client, now func() time.Time, log *slog.Logger) *JWKS {
	if client == nil {
		client = &http.Client{Timeout: FetchTimeout}
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	if refresh < MinRefresh {
		refresh = MinRefresh
	}
	return &JWKS{url: url, client: client, refresh: refresh, now: now, log: log}
}

// Lookup returns the key for a token header (kid may be ""). It may block on the shared
// first fetch, or on the fetch an unknown kid triggers; ctx bounds the wait (the fetch itself
// continues for the other waiters).
func (j *JWKS) Lookup(ctx context.Context, kid, alg string) (*Key, error) {
	ks := j.cur.Load()
	now := j.now()
	if ks == nil || now.Sub(ks.fetched) > j.refresh+StaleGrace {
		var err error
		if ks, err = j.fetchWait(ctx); err != nil {
			return nil, err
		}
	} else if now.Sub(ks.fetched) >= j.refresh {
		j.refreshAsync()
	}
	k, err := Select(ks.keys, kid, alg)
	if errors.Is(err, ErrUnknownKid) {
		if ks2, ferr := j.fetchWait(ctx); ferr == nil && ks2 != ks {
			return Select(ks2.keys, kid, alg)
		}
	}
	return k, err
}

// fresh returns the current key set when it may be used without a fetch (nil otherwise),
// starting the background refresh when one is due.
func (j *JWKS) fresh() *keySet {
	ks := j.cur.Load()
	if ks == nil {
		return nil
	}
	age := j.now().Sub(ks.fetched)
	if age > j.refresh+StaleGrace {
		return nil
	}
	if age >= j.refresh {
		j.refreshAsync()
	}
	return ks
}

// Keys returns the current keys (nil before the first fetch).
func (j *JWKS) Keys() []*Key {
	if ks := j.cur.Load(); ks != nil {
		return ks.keys
	}
	return nil
}

// start begins a fetch unless one runs or the throttle forbids it. It returns the channel
// to wait on, or nil when no fetch runs.
func (j *JWKS) start() chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.flight != nil {
		return j.flight
	}
	now := j.now()
	if j.attempted && now.Sub(j.lastAttempt) < RetryInterval {
		return nil
	}
	j.attempted = true
	j.lastAttempt = now
	ch := make(chan struct{})
	j.flight = ch
	go j.run(ch)
	return ch
}

func (j *JWKS) run(ch chan struct{}) {
	ks, err := j.fetch()
	j.mu.Lock()
	if err != nil {
		j.lastErr = err
		j.log.Warn("jwtAuth: JWKS fetch failed", "url", j.url, "error", err)
	} else {
		j.lastErr = nil
		j.cur.Store(ks)
	}
	j.flight = nil
	close(ch)
	j.mu.Unlock()
}

// fetchWait starts (or joins) a fetch and waits for it. Without a fetch to wait for (the
// throttle), it returns the current keys when they are still usable.
func (j *JWKS) fetchWait(ctx context.Context) (*keySet, error) {
	ch := j.start()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ks := j.cur.Load()
	if ks == nil || j.now().Sub(ks.fetched) > j.refresh+StaleGrace {
		j.mu.Lock()
		err := j.lastErr
		j.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
		}
		return nil, ErrKeysUnavailable
	}
	return ks, nil
}

func (j *JWKS) refreshAsync() { j.start() }

func (j *JWKS) fetch() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("JWKS answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", MaxJWKSBytes)
	}
	keys, skipped, err := ParseJWKS(body, false)
	for _, s := range skipped {
		j.log.Warn("jwtAuth: JWKS key skipped", "url", j.url, "key", s)
	}
	if err != nil {
		return nil, err
	}
	return &keySet{keys: keys, fetched: j.now()}, nil
}

// fetching reports whether a fetch is running (tests).
func (j *JWKS) fetching() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flight != nil
}
