package jwt

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/modules/auth/jwtverify"
)

func benchClaims() gojwt.MapClaims {
	return gojwt.MapClaims{"sub": "user-42", "iss": "https://issuer.test", "aud": "conduit-api",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "email": "u42@example.test"}
}

func benchGuard(b *testing.B, v *jwtverify.Verifier, token string) {
	g := &Guard{v: v}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	// Through the pipeline's request state, as in production.
	st, r := core.AcquireState(w, req, &core.Site{Label: "*"}, time.Now())
	defer core.ReleaseState(st)
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("status %d", w.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.Claims = nil
		h.ServeHTTP(w, r)
	}
	if st.Claims == nil {
		b.Fatal("no claims")
	}
}

// BenchmarkGuardHS256 is the per-request cost of the jwtAuth stage with an HS256 secret.
func BenchmarkGuardHS256(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	tok, err := gojwt.NewWithClaims(gojwt.SigningMethodHS256, benchClaims()).SignedString(secret)
	if err != nil {
		b.Fatal(err)
	}
	v, err := jwtverify.New(jwtverify.Options{Secret: secret, Issuer: "https://issuer.test", Audience: []string{"conduit-api"}})
	if err != nil {
		b.Fatal(err)
	}
	benchGuard(b, v, tok)
}

// BenchmarkGuardRS256JWKS is the per-request cost of the jwtAuth stage with an RS256 key
// from a JWKS served over HTTP (fetched once, before the timer starts).
func BenchmarkGuardRS256JWKS(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) }))
	defer idp.Close()
	t := gojwt.NewWithClaims(gojwt.SigningMethodRS256, benchClaims())
	t.Header["kid"] = "k1"
	tok, err := t.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	cache := jwtverify.NewJWKS(idp.URL, time.Hour, nil, nil, nil)
	if _, err := cache.Lookup(context.Background(), "k1", "RS256"); err != nil {
		b.Fatal(err)
	}
	v, err := jwtverify.New(jwtverify.Options{JWKS: cache, Issuer: "https://issuer.test", Audience: []string{"conduit-api"}})
	if err != nil {
		b.Fatal(err)
	}
	benchGuard(b, v, tok)
}
