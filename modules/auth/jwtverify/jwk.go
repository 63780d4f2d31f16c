package jwtverify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Key is one verification key from a JWK: its kid, its optional alg binding, and the public
// key (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey) or HMAC secret ([]byte).
type Key struct {
	// Kid is the key ID, "" when the JWK has none.
	Kid string
	// Alg is the JWK's "alg", "" when absent. When set, only tokens of that alg use the key.
	Alg string
	// Public is the key material.
	Public any
}

// Limits on RSA keys: 2048–8192 bits.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// jwk is the wire form of the members we read.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	K      string   `json:"k"`
}

// ErrSkip marks a key that is well formed but not for signature verification.
var ErrSkip = errors.New("not a signature verification key")

// ParseJWK reads one JWK. allowSymmetric admits "oct" keys (never for keys fetched from a
// JWKS URL: a public key set must not hold shared secrets). Keys whose "use" is not "sig" or
// whose key_ops lack "verify" return ErrSkip.
func ParseJWK(data []byte, allowSymmetric bool) (*Key, error) {
	var j jwk
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("malformed JWK: %w", err)
	}
	return j.key(allowSymmetric)
}

func (j *jwk) key(allowSymmetric bool) (*Key, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, ErrSkip
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, ErrSkip
	}
	k := &Key{Kid: j.Kid, Alg: j.Alg}
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64(j.E, "e")
		if err != nil {
			return nil, err
		}
		if len(n) == 0 || n[0] == 0 {
			return nil, errors.New("RSA modulus is empty or has a leading zero byte")
		}
		nn := new(big.Int).SetBytes(n)
		if bits := nn.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is outside %d–%d", bits, minRSABits, maxRSABits)
		}
		if len(e) == 0 || len(e) > 4 {
			return nil, errors.New("RSA exponent out of range")
		}
		ee := int(new(big.Int).SetBytes(e).Int64())
		if ee < 3 || ee%2 == 0 {
			return nil, errors.New("RSA exponent out of range")
		}
		k.Public = &rsa.PublicKey{N: nn, E: ee}
		if !algFits(k, j.Alg, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512") {
			return nil, fmt.Errorf("alg %q does not fit an RSA key", j.Alg)
		}
	case "EC":
		var (
			curve elliptic.Curve
			alg   string
		)
		switch j.Crv {
		case "P-256":
			curve, alg = elliptic.P256(), "ES256"
		case "P-384":
			curve, alg = elliptic.P384(), "ES384"
		case "P-521":
			curve, alg = elliptic.P521(), "ES512"
		default:
			return nil, fmt.Errorf("unsupported EC curve %q", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64(j.X, "x")
		if err != nil {
			return nil, err
		}
		y, err := b64(j.Y, "y")
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("EC coordinates must be %d bytes for %s", size, j.Crv)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(point, 4)
		point = append(point, x...)
		point = append(point, y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("EC point is not on %s", j.Crv)
		}
		k.Public = pub
		if !algFits(k, j.Alg, alg) {
			return nil, fmt.Errorf("alg %q does not fit an EC %s key", j.Alg, j.Crv)
		}
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", j.Crv)
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key must be 32 bytes")
		}
		k.Public = ed25519.PublicKey(x)
		if !algFits(k, j.Alg, "EdDSA", "Ed25519") {
			return nil, fmt.Errorf("alg %q does not fit an Ed25519 key", j.Alg)
		}
		if k.Alg == "Ed25519" {
			k.Alg = "EdDSA"
		}
	case "oct":
		if !allowSymmetric {
			return nil, ErrSkip
		}
		secret, err := b64(j.K, "k")
		if err != nil {
			return nil, err
		}
		if len(secret) == 0 {
			return nil, errors.New("empty oct key")
		}
		k.Public = secret
		if !algFits(k, j.Alg, "HS256", "HS384", "HS512") {
			return nil, fmt.Errorf("alg %q does not fit an oct key", j.Alg)
		}
	default:
		return nil, fmt.Errorf("unsupported kty %q", j.Kty)
	}
	return k, nil
}

func algFits(_ *Key, alg string, allowed ...string) bool {
	return alg == "" || slices.Contains(allowed, alg)
}

func b64(s, name string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("JWK member %q is missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("JWK member %q is not base64url", name)
	}
	return b, nil
}

// Fits reports whether the key can verify a token signed with alg (the key type, the curve
// and the JWK's own alg all agree). This is what stops HS/RS key confusion: an RSA key never
// verifies an HS256 token, and a secret never verifies an RS256 token.
func (k *Key) Fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		switch alg {
		case "HS256", "HS384", "HS512":
			return true
		}
	}
	return false
}

// ParseJWKS reads a JWK Set. Keys that cannot be used are skipped and reported in skipped
// (one line each, never key material); a set with no usable key is an error.
func ParseJWKS(data []byte, allowSymmetric bool) (keys []*Key, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("malformed JWKS: %w", err)
	}
	if len(set.Keys) > maxKeys {
		return nil, nil, fmt.Errorf("JWKS holds %d keys, more than %d", len(set.Keys), maxKeys)
	}
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: malformed", i))
			continue
		}
		k, err := j.key(allowSymmetric)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %q, kty %q): %v", i, j.Kid, j.Kty, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("JWKS holds no usable signature key")
	}
	return keys, skipped, nil
}

// maxKeys bounds a JWK Set.
const maxKeys = 100

// Errors of key selection.
var (
	ErrUnknownKid = errors.New("no key with the token's kid")
	ErrAmbiguous  = errors.New("token has no kid and several keys fit its alg")
	ErrNoKey      = errors.New("no key fits the token's alg")
)

// Select picks the key for a token header: by kid when the token has one (the key must fit
// alg), otherwise the only key that fits alg. Two or more candidates without a kid to tell
// them apart are an ambiguity, and the token is rejected.
func Select(keys []*Key, kid, alg string) (*Key, error) {
	if kid != "" {
		seen := false
		for _, k := range keys {
			if k.Kid != kid {
				continue
			}
			seen = true
			if k.Fits(alg) {
				return k, nil
			}
		}
		if seen {
			return nil, ErrNoKey
		}
		return nil, ErrUnknownKid
	}
	var found *Key
	for _, k := range keys {
		if !k.Fits(alg) {
			continue
		}
		if found != nil {
			return nil, ErrAmbiguous
		}
		found = k
	}
	if found == nil {
		return nil, ErrNoKey
	}
	return found, nil
}
