// Package creds holds the credential checks shared by the auth modules: passwords stored as
// plaintext or as htpasswd-style hashes, and sets of API keys. Every comparison is constant
// time in the secret; slow hashes (bcrypt, crypt-SHA) remember recent successes so a valid
// client does not pay for bcrypt on every request.
package creds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	htpasswd "github.com/tg123/go-htpasswd"
)

// Password is one stored password: plaintext, or a hash in one of the htpasswd formats.
type Password struct {
	kind  string
	plain [32]byte // SHA-256 of the plaintext, compared in constant time
	hash  htpasswd.EncodedPasswd
	slow  bool
	work  float64 // estimated cost of checking a wrong password, in microseconds
	decoy bool    // matches nothing, never caches; see Decoy

	mu    sync.Mutex
	cache map[[32]byte]struct{} // HMACs of passwords that matched a slow hash
}

// Kinds of stored password, as Kind reports them.
const (
	KindPlain  = "plaintext"
	KindBcrypt = "bcrypt"
	KindSHA1   = "{SHA}"
	KindSSHA   = "{SSHA}"
	KindAPR1   = "apr1-md5"
	KindMD5    = "md5-crypt"
	KindSHA256 = "sha256-crypt"
	KindSHA512 = "sha512-crypt"
)

// maxCache bounds the success cache of one slow hash.
const maxCache = 256

var (
	cacheKeyOnce sync.Once
	cacheKey     [32]byte
)

func cacheMAC(pw string) [32]byte {
	cacheKeyOnce.Do(func() { _, _ = rand.Read(cacheKey[:]) })
	m := hmac.New(sha256.New, cacheKey[:])
	m.Write([]byte(pw))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// ParsePassword reads a stored password. A value with a recognised hash prefix is a hash:
// bcrypt ($2a$, $2b$, $2y$), {SHA}, {SSHA}, Apache MD5 ($apr1$), MD5-crypt ($1$) and
// SHA-crypt ($5$, $6$). "{PLAIN}" forces plaintext; anything else is plaintext. A malformed
// hash is an error; the error never contains the value.
func ParsePassword(v string) (*Password, error) {
	p := &Password{}
	var (
		parse func(string) (htpasswd.EncodedPasswd, error)
	)
	switch {
	case strings.HasPrefix(v, "{PLAIN}"):
		p.kind = KindPlain
		p.plain = sha256.Sum256([]byte(strings.TrimPrefix(v, "{PLAIN}")))
		return p, nil
	case strings.HasPrefix(v, "$2a$"), strings.HasPrefix(v, "$2b$"), strings.HasPrefix(v, "$2y$"):
		p.kind, parse, p.slow = KindBcrypt, htpasswd.AcceptBcrypt, true
	case strings.HasPrefix(v, "{SHA}"):
		p.kind, parse = KindSHA1, htpasswd.AcceptSha
	case strings.HasPrefix(v, "{SSHA}"):
		p.kind, parse = KindSSHA, htpasswd.AcceptSsha
	case strings.HasPrefix(v, "$apr1$"):
		p.kind, parse = KindAPR1, htpasswd.AcceptMd5
	case strings.HasPrefix(v, "$1$"):
		p.kind, parse = KindMD5, htpasswd.AcceptMd5
	case strings.HasPrefix(v, "$5$"):
		p.kind, parse, p.slow = KindSHA256, htpasswd.AcceptCryptSha, true
	case strings.HasPrefix(v, "$6$"):
		p.kind, parse, p.slow = KindSHA512, htpasswd.AcceptCryptSha, true
	default:
		p.kind = KindPlain
		p.plain = sha256.Sum256([]byte(v))
		return p, nil
	}
	h, err := safeParse(parse, v)
	if err != nil || h == nil {
		return nil, fmt.Errorf("looks like a %s hash but is malformed", p.kind)
	}
	if p.kind == KindBcrypt && !validBcrypt(v) {
		return nil, fmt.Errorf("looks like a %s hash but is malformed", p.kind)
	}
	p.hash = h
	p.work = estimateWork(p.kind, v)
	return p, nil
}

// estimateWork estimates, in microseconds on a current x86 core, what checking a wrong
// password against the hash v of the given kind costs. Only the order matters: it picks the
// hash that unknown users are checked against (Decoy).
func estimateWork(kind, v string) float64 {
	switch kind {
	case KindBcrypt:
		cost, _ := strconv.Atoi(v[4:6]) // validBcrypt checked the two digits
		return 54 * float64(uint64(1)<<min(cost, 31))
	case KindSHA256, KindSHA512:
		rounds := 5000 // crypt(3)'s default
		if rest, ok := strings.CutPrefix(v[3:], "rounds="); ok {
			if end := strings.IndexByte(rest, '$'); end > 0 {
				if n, err := strconv.Atoi(rest[:end]); err == nil {
					rounds = min(max(n, 1000), 999999999)
				}
			}
		}
		return 0.5 * float64(rounds)
	case KindAPR1, KindMD5:
		return 200
	}
	return 1
}

// safeParse guards against a parser panicking on hostile input.
func safeParse(parse func(string) (htpasswd.EncodedPasswd, error), v string) (h htpasswd.EncodedPasswd, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, errors.New("malformed")
		}
	}()
	return parse(v)
}

// validBcrypt checks the shape $2x$NN$<53 chars of bcrypt base64>.
func validBcrypt(v string) bool {
	if len(v) != 60 || v[3] != '$' || v[6] != '$' {
		return false
	}
	if v[4] < '0' || v[4] > '3' || v[5] < '0' || v[5] > '9' {
		return false
	}
	for i := 7; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// Kind names the stored format.
func (p *Password) Kind() string { return p.kind }

// Match reports whether pw is the password. Plaintext comparison is constant time over
// digests (so the length does not leak either); hash formats use the hash's own check.
func (p *Password) Match(pw string) bool {
	if p == nil {
		return false
	}
	if p.hash == nil {
		d := sha256.Sum256([]byte(pw))
		return subtle.ConstantTimeCompare(d[:], p.plain[:]) == 1 && !p.decoy
	}
	if p.decoy {
		p.hash.MatchesPassword(pw)
		return false
	}
	if !p.slow {
		return p.hash.MatchesPassword(pw)
	}
	mac := cacheMAC(pw)
	p.mu.Lock()
	_, hit := p.cache[mac]
	p.mu.Unlock()
	if hit {
		return true
	}
	if !p.hash.MatchesPassword(pw) {
		return false
	}
	p.mu.Lock()
	if p.cache == nil {
		p.cache = map[[32]byte]struct{}{}
	}
	if len(p.cache) < maxCache {
		p.cache[mac] = struct{}{}
	}
	p.mu.Unlock()
	return true
}

// dummy is the decoy when no password is configured: a plaintext check that matches nothing.
var dummy = &Password{kind: KindPlain, decoy: true}

// Decoy returns the password to check a presented password against when the user does not
// exist, so that an unknown user costs what a wrong password for a known one costs (no user
// enumeration by timing): a copy of the costliest of ps (by kind, bcrypt cost and SHA-crypt
// rounds) that matches nothing and never uses the success cache. With users of different
// kinds, an unknown user costs what the costliest kind costs.
func Decoy(ps ...*Password) *Password {
	var worst *Password
	for _, p := range ps {
		if p != nil && (worst == nil || p.work > worst.work) {
			worst = p
		}
	}
	if worst == nil {
		return dummy
	}
	return &Password{kind: worst.kind, plain: worst.plain, hash: worst.hash, slow: worst.slow, work: worst.work, decoy: true}
}

// KeySet is a set of API keys compared in constant time: the presented key is hashed once,
// and its digest is compared with every stored digest without an early exit.
type KeySet struct {
	digests [][32]byte
}

// Add appends a key and returns its index.
func (k *KeySet) Add(key string) int {
	k.digests = append(k.digests, sha256.Sum256([]byte(key)))
	return len(k.digests) - 1
}

// Len is the number of keys.
func (k *KeySet) Len() int { return len(k.digests) }

// Index returns the index of the first stored key equal to presented, or -1. Its running
// time does not depend on which key (if any) matched.
func (k *KeySet) Index(presented string) int {
	d := sha256.Sum256([]byte(presented))
	found := -1
	for i := range k.digests {
		eq := subtle.ConstantTimeCompare(d[:], k.digests[i][:])
		// found = (found < 0 && eq) ? i : found, without a data-dependent branch.
		take := eq & subtle.ConstantTimeLessOrEq(found+1, 0)
		found = subtle.ConstantTimeSelect(take, i, found)
	}
	return found
}
