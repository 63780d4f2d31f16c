package jwtverify

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// verifyRaw verifies a compact JWS whose payload is not a claims set.
func verifyRaw(token string, key *Key) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ErrMalformed
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return ErrMalformed
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return ErrMalformed
	}
	m := jwt.GetSigningMethod(h.Alg)
	if m == nil || h.Alg == "none" || !key.Fits(h.Alg) {
		return ErrNoKey
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ErrMalformed
	}
	return m.Verify(parts[0]+"."+parts[1], sig, key.Public)
}
