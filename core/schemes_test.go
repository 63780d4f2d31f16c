package core

import (
	"slices"
	"testing"
)

func TestSchemeRegistry(t *testing.T) {
	r := NewSchemeRegistry[func() string]("test store")
	r.Register("redis", func() string { return "r" })
	r.Register("disk", func() string { return "d" })
	if f, ok := r.Lookup("disk"); !ok || f() != "d" {
		t.Fatal("lookup disk")
	}
	if _, ok := r.Lookup("memcached"); ok {
		t.Fatal("unknown scheme found")
	}
	if got := r.Schemes(); !slices.Equal(got, []string{"disk", "redis"}) {
		t.Fatalf("schemes %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate scheme must panic")
		}
	}()
	r.Register("redis", func() string { return "again" })
}
