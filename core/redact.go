package core

import (
	"net/url"
	"strings"
)

// Redacted replaces the value of a credential query parameter in access logs, tap events and
// trace attributes. It has no brackets so that a redacted request target stays a valid URI.
const Redacted = "REDACTED"

// CredentialParams are the query parameters whose values RedactQuery hides: the apiKey
// guard's api_key, the usual spellings of API keys and OAuth tokens, passwords, secrets and
// URL signatures (AWS and Google signed URLs included). Names are compared
// case-insensitively after percent-decoding, so "API%5FKEY" is api_key too.
var CredentialParams = []string{
	"api_key", "apikey", "api-key", "x-api-key", "key",
	"access_token", "id_token", "refresh_token", "token", "auth", "jwt",
	"password", "passwd", "pwd", "secret", "client_secret",
	"sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
	"x-goog-signature", "x-goog-credential",
}

// RedactQuery returns the raw query string with the value of every parameter named in
// CredentialParams replaced by Redacted. Parameters are split on '&' and on ';' (which some
// servers also treat as a separator), so hiding never depends on which of the two a reader
// uses. It returns raw itself, without allocating, when there is nothing to hide.
func RedactQuery(raw string) string {
	var b strings.Builder
	done := 0 // raw[:done] is already in b
	for i := 0; i < len(raw); {
		end := strings.IndexAny(raw[i:], "&;")
		if end < 0 {
			end = len(raw)
		} else {
			end += i
		}
		if eq := strings.IndexByte(raw[i:end], '='); eq >= 0 && isCredentialParam(raw[i:i+eq]) {
			valueAt := i + eq + 1
			if valueAt < end {
				b.WriteString(raw[done:valueAt])
				b.WriteString(Redacted)
				done = end
			}
		}
		i = end + 1
	}
	if done == 0 {
		return raw
	}
	b.WriteString(raw[done:])
	return b.String()
}

// RedactTarget applies RedactQuery to the query of a request target ("/path?query", or an
// absolute URL).
func RedactTarget(target string) string {
	i := strings.IndexByte(target, '?')
	if i < 0 {
		return target
	}
	q := RedactQuery(target[i+1:])
	if q == target[i+1:] {
		return target
	}
	return target[:i+1] + q
}

// isCredentialParam reports whether a raw parameter name is one of CredentialParams.
func isCredentialParam(name string) bool {
	if strings.ContainsAny(name, "%+") {
		if u, err := url.QueryUnescape(name); err == nil {
			name = u
		}
	}
	name = strings.TrimSpace(name)
	for _, c := range CredentialParams {
		if strings.EqualFold(name, c) {
			return true
		}
	}
	return false
}
