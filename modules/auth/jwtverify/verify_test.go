package jwtverify

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type rfcVector struct {
	Source string          `json:"source"`
	Token  string          `json:"token"`
	JWK    json.RawMessage `json:"jwk"`
	Claims bool            `json:"claims"`
	Now    int64           `json:"now"`
	Valid  bool            `json:"valid"`
}

// TestRFCVectors verifies the example tokens of RFC 7515 App. A, RFC 7519 §3.1, RFC 7520 §4
// and RFC 8037 App. A with their published keys and a fixed clock; the unsecured example
// (A.5) must be rejected.
func TestRFCVectors(t *testing.T) {
	var f struct {
		Vectors []rfcVector `json:"vectors"`
	}
	readJSON(t, "testdata/rfc-vectors.json", &f)
	if len(f.Vectors) < 10 {
		t.Fatalf("only %d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.Source, func(t *testing.T) {
			k, err := ParseJWK(v.JWK, true)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Claims {
				err := VerifySignature(v.Token, k)
				if (err == nil) != v.Valid {
					t.Fatalf("signature: err=%v, want valid=%v", err, v.Valid)
				}
				// One flipped signature bit must fail.
				if err := VerifySignature(flipLast(v.Token), k); err == nil {
					t.Fatal("tampered signature verified")
				}
				return
			}
			now := time.Unix(v.Now, 0)
			ver, err := New(Options{Keys: []*Key{k}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			claims, err := ver.Verify(context.Background(), v.Token)
			if (err == nil) != v.Valid {
				t.Fatalf("err=%v, want valid=%v", err, v.Valid)
			}
			if v.Valid {
				if claims["iss"] != "joe" || claims["http://example.com/is_root"] != true {
					t.Fatalf("claims %v", claims)
				}
				// The same token after exp (+ leeway) is expired.
				later := time.Unix(1300819380+61, 0)
				ver2, _ := New(Options{Keys: []*Key{k}, Now: func() time.Time { return later }})
				if _, err := ver2.Verify(context.Background(), v.Token); !errors.Is(err, jwt.ErrTokenExpired) {
					t.Fatalf("after exp: %v", err)
				}
			}
		})
	}
}

func flipLast(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if len(sig) == 0 {
		return tok + "AA"
	}
	sig[len(sig)/2] ^= 1
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func readJSON(t testing.TB, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

type joseFile struct {
	Now      int64  `json:"now"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	Secret   string `json:"secret"`
	Tokens   []struct {
		Name  string `json:"name"`
		Valid bool   `json:"valid"`
		Alg   string `json:"alg"`
		Kid   string `json:"kid"`
		Token string `json:"token"`
	} `json:"tokens"`
}

const joseDir = "../jwt/testdata/jose/"

func loadJose(t testing.TB) (joseFile, []*Key) {
	var f joseFile
	readJSON(t, joseDir+"tokens.json", &f)
	b, err := os.ReadFile(joseDir + "jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	keys, skipped, err := ParseJWKS(b, false)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("jwks: %v %v", err, skipped)
	}
	return f, keys
}

// TestJoseTokens verifies tokens made by panva/jose (testdata/gen) against the jose JWKS:
// every algorithm verifies, and each negative case is rejected.
func TestJoseTokens(t *testing.T) {
	f, keys := loadJose(t)
	now := time.Unix(f.Now, 0)
	clock := func() time.Time { return now }
	asym, err := New(Options{Keys: keys, Issuer: f.Issuer, Audience: []string{"other", f.Audience}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := New(Options{Secret: []byte(f.Secret), Issuer: f.Issuer, Audience: []string{f.Audience}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	algs := map[string]bool{}
	for _, tk := range f.Tokens {
		t.Run(tk.Name, func(t *testing.T) {
			v := asym
			if strings.HasPrefix(tk.Alg, "HS") {
				v = hs
			}
			claims, err := v.Verify(context.Background(), tk.Token)
			if (err == nil) != tk.Valid {
				t.Fatalf("err=%v, want valid=%v", err, tk.Valid)
			}
			if tk.Valid {
				algs[tk.Alg] = true
				if claims["sub"] != "user-42" {
					t.Fatalf("sub %v", claims["sub"])
				}
			}
		})
	}
	for _, a := range append(append([]string{}, AsymmetricAlgs...), HMACAlgs...) {
		if !algs[a] {
			t.Errorf("no jose token verified with %s", a)
		}
	}
}

// forge builds a compact JWS from a header and claims, signed with method and key.
func forge(t testing.TB, header map[string]any, claims map[string]any, m jwt.SigningMethod, key any) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	if m == nil {
		return in + "."
	}
	sig, err := m.Sign(in, key)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestAttacks: each attack is rejected, each in its own case.
func TestAttacks(t *testing.T) {
	f, keys := loadJose(t)
	now := time.Unix(f.Now, 0)
	clock := func() time.Time { return now }
	v, err := New(Options{Keys: keys, Issuer: f.Issuer, Audience: []string{f.Audience}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := Select(keys, "rsa-1", "RS256")
	pub := rsaKey.Public.(*rsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	good := map[string]any{"sub": "mallory", "iss": f.Issuer, "aud": f.Audience, "exp": f.Now + 600, "iat": f.Now}
	hsSecret := []byte(f.Secret)
	hsVerifier, _ := New(Options{Secret: hsSecret, Now: clock})
	// A JWKS-backed verifier admits only asymmetric algorithms: HS* fails before key lookup.
	jwksV, _ := New(Options{JWKS: NewJWKS("http://127.0.0.1:1/unused", time.Hour, nil, clock, nil), Now: clock})

	cases := []struct {
		name  string
		v     *Verifier
		token string
		want  error
	}{
		{"alg none", v, forge(t, map[string]any{"alg": "none", "typ": "JWT"}, good, nil, nil), jwt.ErrTokenSignatureInvalid},
		{"alg none, kid of a real key", v, forge(t, map[string]any{"alg": "none", "kid": "rsa-1"}, good, nil, nil), jwt.ErrTokenSignatureInvalid},
		{"alg None (case)", v, forge(t, map[string]any{"alg": "None"}, good, nil, nil), jwt.ErrTokenUnverifiable},
		{"alg none against a secret", hsVerifier, forge(t, map[string]any{"alg": "none"}, good, nil, nil), jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with the RSA public key PEM", v, forge(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, good, jwt.SigningMethodHS256, pemBytes), ErrNoKey},
		{"HS256 signed with the RSA public key PEM, JWKS verifier", jwksV, forge(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, good, jwt.SigningMethodHS256, pemBytes), jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with the RSA public key DER", v, forge(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, good, jwt.SigningMethodHS256, der), ErrNoKey},
		{"HS256 signed with the RSA public key DER, JWKS verifier", jwksV, forge(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, good, jwt.SigningMethodHS256, der), jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with the RSA modulus, no kid", v, forge(t, map[string]any{"alg": "HS256"}, good, jwt.SigningMethodHS256, pub.N.Bytes()), ErrNoKey},
		{"RS256 header on an HS verifier", hsVerifier, forge(t, map[string]any{"alg": "HS256"}, good, jwt.SigningMethodHS256, pemBytes), jwt.ErrTokenSignatureInvalid},
		{"expired", hsVerifier, forge(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": f.Now - 61}, jwt.SigningMethodHS256, hsSecret), jwt.ErrTokenExpired},
		{"unknown kid", v, joseToken(t, f, "unknown kid"), ErrUnknownKid},
		{"wrong issuer", v, joseToken(t, f, "wrong issuer"), jwt.ErrTokenInvalidIssuer},
		{"wrong audience", v, joseToken(t, f, "wrong audience"), jwt.ErrTokenInvalidAudience},
		{"expired (jose)", v, joseToken(t, f, "expired"), jwt.ErrTokenExpired},
		{"not yet valid (jose)", v, joseToken(t, f, "not yet valid"), jwt.ErrTokenNotValidYet},
		{"oversized", v, strings.Repeat("a", MaxTokenBytes-10) + "." + strings.Repeat("b", 20) + ".c", ErrTooLarge},
		{"malformed: two parts", v, "abc.def", jwt.ErrTokenMalformed},
		{"malformed: garbage", v, "!!!.###.$$$", jwt.ErrTokenMalformed},
		{"malformed: empty", v, "", ErrMalformed},
		{"malformed: header not JSON", v, "bm90anNvbg.e30.c2ln", jwt.ErrTokenMalformed},
		{"crit header", v, reSign(t, map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, good, hsSecret), ErrCrit},
		{"no exp", hsVerifier, forge(t, map[string]any{"alg": "HS256"}, map[string]any{"sub": "x"}, jwt.SigningMethodHS256, hsSecret), jwt.ErrTokenRequiredClaimMissing},
		{"kid names a key of another type", v, forge(t, map[string]any{"alg": "ES256", "kid": "rsa-1"}, good, jwt.SigningMethodHS256, hsSecret), ErrNoKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := tc.v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %v", claims)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// reSign signs with HS256 regardless of the header's other members.
func reSign(t testing.TB, header, claims map[string]any, secret []byte) string {
	return forge(t, header, claims, jwt.SigningMethodHS256, secret)
}

func joseToken(t testing.TB, f joseFile, name string) string {
	for _, tk := range f.Tokens {
		if tk.Name == name {
			return tk.Token
		}
	}
	t.Fatalf("no jose token %q", name)
	return ""
}

func TestLeeway(t *testing.T) {
	f, keys := loadJose(t)
	now := time.Unix(f.Now, 0)
	v, _ := New(Options{Keys: keys, Now: func() time.Time { return now }})
	if _, err := v.Verify(context.Background(), joseToken(t, f, "expired within leeway")); err != nil {
		t.Fatalf("30 s past exp is within the 60 s leeway: %v", err)
	}
	strict, _ := New(Options{Keys: keys, Leeway: -1, Now: func() time.Time { return now }})
	if _, err := strict.Verify(context.Background(), joseToken(t, f, "expired within leeway")); err == nil {
		t.Fatal("without leeway the token is expired")
	}
}

func TestSelectAmbiguity(t *testing.T) {
	b, _ := os.ReadFile(joseDir + "jwks.json")
	keys, _, _ := ParseJWKS(b, false)
	var rsaKeys []*Key
	for _, k := range keys {
		if k.Fits("RS256") {
			cp := *k
			cp.Kid = ""
			rsaKeys = append(rsaKeys, &cp, &cp)
			break
		}
	}
	if _, err := Select(rsaKeys, "", "RS256"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("two kid-less keys: %v", err)
	}
	if k, err := Select(rsaKeys[:1], "", "RS256"); err != nil || k == nil {
		t.Fatalf("one kid-less key: %v", err)
	}
	if _, err := Select(rsaKeys[:1], "", "ES256"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no fitting key: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no key source accepted")
	}
	if _, err := New(Options{Secret: []byte("x"), Keys: []*Key{}}); err == nil {
		t.Error("two key sources accepted")
	}
	if _, err := New(Options{Secret: []byte{}}); err == nil {
		t.Error("empty secret accepted")
	}
}

func TestParseJWKRejects(t *testing.T) {
	for _, tc := range []struct{ name, jwk string }{
		{"small RSA", `{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 128)) + `","e":"AQAB"}`},
		{"even exponent", `{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AAI"}`},
		{"EC point off curve", `{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"y_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`},
		{"EC short coordinate", `{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}`},
		{"unknown curve", `{"kty":"EC","crv":"secp256k1","x":"AQ","y":"AQ"}`},
		{"Ed448", `{"kty":"OKP","crv":"Ed448","x":"AQ"}`},
		{"alg mismatch", `{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`},
		{"not JSON", `{`},
		{"no kty", `{}`},
	} {
		if _, err := ParseJWK([]byte(tc.jwk), true); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// oct from a JWKS URL and encryption keys are skipped, not errors.
	for _, j := range []string{`{"kty":"oct","k":"AQ"}`, `{"kty":"OKP","crv":"Ed25519","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`} {
		if _, err := ParseJWK([]byte(j), false); !errors.Is(err, ErrSkip) {
			t.Errorf("%s: %v, want ErrSkip", j, err)
		}
	}
}

func FuzzParseJWKS(f *testing.F) {
	b, _ := os.ReadFile(joseDir + "jwks.json")
	f.Add(b)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AQ"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-521","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _, err := ParseJWKS(data, true)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range keys {
			_ = k.Fits("RS256")
		}
	})
}

func FuzzVerify(f *testing.F) {
	var jf joseFile
	readJSON(f, joseDir+"tokens.json", &jf)
	b, _ := os.ReadFile(joseDir + "jwks.json")
	keys, _, _ := ParseJWKS(b, false)
	for _, tk := range jf.Tokens {
		f.Add(tk.Token)
	}
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	now := time.Unix(jf.Now, 0)
	v, _ := New(Options{Keys: keys, Issuer: jf.Issuer, Audience: []string{jf.Audience}, Now: func() time.Time { return now }})
	valid := map[string]bool{}
	for _, tk := range jf.Tokens {
		if tk.Valid && !strings.HasPrefix(tk.Alg, "HS") {
			valid[tk.Token] = true
		}
	}
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := v.Verify(context.Background(), tok)
		if err == nil && !valid[tok] {
			// Only a token signed by a jose key can verify; a fuzzer cannot forge one.
			t.Fatalf("forged token verified: %q %v", tok, claims)
		}
	})
}
