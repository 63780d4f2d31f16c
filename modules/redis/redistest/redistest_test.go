package redistest

import "testing"

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if got, err := s.Do("SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET: %q %v", got, err)
	}
	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("server still answers after Kill")
	}
	s.Restart()
	if got, err := s.Do("GET", "k"); err != nil || got != "$-1" {
		t.Fatalf("after restart GET k = %q %v, want nil reply (no persistence)", got, err)
	}
}
