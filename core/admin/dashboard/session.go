package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// Session limits.
const (
	// CookieName is the session cookie.
	CookieName = "conduit_dashboard"
	// SessionLifetime is how long a session lasts after login.
	SessionLifetime = 8 * time.Hour
	// MaxSessions bounds the sessions kept; a login past it ends the oldest.
	MaxSessions = 64
)

// session is one login: when it ends and a hash of the token it was opened with, so a
// reload that rotates the token ends it.
type session struct {
	expires time.Time
	token   [32]byte
}

// sessions are kept by the SHA-256 of their id, in memory: a restart ends them all.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]session
}

func newSessions() *sessions { return &sessions{m: map[[32]byte]session{}} }

// create opens a session for token and returns its id (256 random bits, base64url).
func (s *sessions) create(token string, now time.Time) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= MaxSessions {
		var oldest [32]byte
		first := true
		for k, v := range s.m {
			if first || v.expires.Before(s.m[oldest].expires) {
				oldest, first = k, false
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = session{expires: now.Add(SessionLifetime), token: sha256.Sum256([]byte(token))}
	return id, nil
}

// valid reports whether id is a live session opened with token.
func (s *sessions) valid(id, token string, now time.Time) bool {
	s.mu.Lock()
	v, ok := s.m[sha256.Sum256([]byte(id))]
	s.mu.Unlock()
	want := sha256.Sum256([]byte(token))
	return ok && now.Before(v.expires) && subtle.ConstantTimeCompare(v.token[:], want[:]) == 1
}

// remove ends the session id.
func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}
