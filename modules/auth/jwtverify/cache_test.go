package jwtverify

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestCacheServesAVerifiedTokenUntilItExpires(t *testing.T) {
	f, keys := loadJose(t)
	clock := newClock(time.Unix(f.Now, 0))
	v, err := New(Options{Keys: keys, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := joseToken(t, f, "rsa-1 RS256")
	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(first).Pointer() != reflect.ValueOf(second).Pointer() || v.cache.len() != 1 {
		t.Fatalf("the second verification did not come from the cache (entries %d)", v.cache.len())
	}
	// A changed signature is a different token: verified (and rejected) in full.
	if _, err := v.Verify(context.Background(), flipLast(tok)); err == nil {
		t.Fatal("a token with a flipped signature byte was accepted")
	}
	exp, ok := first["exp"].(float64)
	if !ok {
		t.Fatalf("exp claim %v", first["exp"])
	}
	clock.ns.Store(time.Unix(int64(exp), 0).Add(DefaultLeeway + time.Second).UnixNano())
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("a cached token was accepted after exp + leeway")
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("the expired entry stayed cached (%d entries)", n)
	}
}

func TestCacheNeverStoresRejectedTokens(t *testing.T) {
	f, keys := loadJose(t)
	now := time.Unix(f.Now, 0)
	v, _ := New(Options{Keys: keys, Issuer: f.Issuer, Audience: []string{f.Audience}, Now: func() time.Time { return now }})
	for _, name := range []string{"expired", "not yet valid", "wrong issuer", "wrong audience", "unknown kid", "ES256 signed with the P-384 kid"} {
		for range 2 {
			if _, err := v.Verify(context.Background(), joseToken(t, f, name)); err == nil {
				t.Fatalf("%s: accepted", name)
			}
		}
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("%d rejected tokens were cached", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	f, keys := loadJose(t)
	now := time.Unix(f.Now, 0)
	v, _ := New(Options{Keys: keys, CacheEntries: 2, Now: func() time.Time { return now }})
	for _, name := range []string{"rsa-1 RS256", "rsa-1 RS384", "ec-256 ES256", "ed-1 EdDSA"} {
		if _, err := v.Verify(context.Background(), joseToken(t, f, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := v.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want its bound 2", n)
	}
	off, _ := New(Options{Keys: keys, CacheEntries: -1, Now: func() time.Time { return now }})
	if _, err := off.Verify(context.Background(), joseToken(t, f, "rsa-1 RS256")); err != nil || off.cache != nil {
		t.Fatalf("CacheEntries -1: err %v, cache %v", err, off.cache)
	}
}

// TestCacheFollowsJWKSRotation: a token verified with a key that the IdP then removes must be
// refused once the refreshed key set is in use, even though the token is cached and would
// still be within its lifetime.
func TestCacheFollowsJWKSRotation(t *testing.T) {
	f, _ := loadJose(t)
	srv := newJWKSServer(t, "jwks.json")
	clock := newClock(time.Unix(f.Now, 0))
	j := NewJWKS(srv.URL, 2*time.Minute, nil, clock.Now, nil)
	v, err := New(Options{JWKS: j, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := joseToken(t, f, "rsa-1 RS256")
	for range 2 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if v.cache.len() != 1 {
		t.Fatalf("cache entries %d, want 1", v.cache.len())
	}
	srv.set(t, "jwks-rotated.json")
	clock.Add(2 * time.Minute)
	// The refresh is due: this hit is still served from the current (old) keys, and must
	// start the background refresh.
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("before the refresh completes: %v", err)
	}
	waitFor(t, "the background refresh", func() bool { return hasKid(j.Keys(), "rsa-2") })
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnknownKid) {
		t.Fatalf("token signed by the retired key after the refresh: err = %v, want ErrUnknownKid", err)
	}
}
