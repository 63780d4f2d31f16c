package script

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/canonical"
)

func TestSetPath(t *testing.T) {
	tests := []struct {
		in, path, uri string
		err           bool
	}{
		{"/a/b", "/a/b", "/a/b?q=1", false},
		{"/a/../b", "/b", "/b?q=1", false},
		{"/a//b/./c", "/a/b/c", "/a/b/c?q=1", false},
		{"/../../etc", "/etc", "/etc?q=1", false},
		{"/a b", "/a b", "/a%20b?q=1", false},
		{"/a%2fb", "", "", true}, // an encoded slash has no canonical form
		{"relative", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/orig?q=1", nil)
			err := SetPath(r, tt.in)
			if tt.err {
				if !errors.Is(err, ErrPath) || r.URL.Path != "/orig" {
					t.Fatalf("err %v, path %q: want ErrPath and the request unchanged", err, r.URL.Path)
				}
				return
			}
			if err != nil || r.URL.Path != tt.path || r.RequestURI != tt.uri {
				t.Fatalf("err %v, path %q, uri %q; want %q %q", err, r.URL.Path, r.RequestURI, tt.path, tt.uri)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	c := NewConfig("middleware[0]", []byte(`{"a": 1, "b": ["x"]}`))
	var v struct {
		A int
		B []string
	}
	if err := c.Decode(&v); err != nil || v.A != 1 || len(v.B) != 1 {
		t.Fatalf("decode: %v %+v", err, v)
	}
	if m := c.Map(); m["a"] != 1.0 {
		t.Fatalf("map %v", m)
	}
	var bad struct{ A string }
	if err := c.Decode(&bad); err == nil || !strings.HasPrefix(err.Error(), "middleware[0].config: ") {
		t.Fatalf("error %v", err)
	}
	empty := NewConfig("m", []byte("null"))
	if err := empty.Decode(&v); err != nil || empty.Map() != nil || empty.JSON() != "null" {
		t.Fatal("an absent config decodes to nothing")
	}
}

// FuzzSetPath: any path a script sets is refused or canonical (checking it again changes
// nothing), never climbs above the root, and never panics.
func FuzzSetPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "/a%2fb", "/\\x", "/a b?c#d", "//x//", "/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r := httptest.NewRequest("GET", "/", nil)
		if err := SetPath(r, p); err != nil {
			return
		}
		escaped, decoded, err := canonical.Path(r.URL.EscapedPath(), canonical.PathOptions{})
		if err != nil || escaped != r.URL.EscapedPath() || decoded != r.URL.Path {
			t.Fatalf("SetPath(%q) left %q (escaped %q), not canonical: %q %q %v", p, r.URL.Path, r.URL.EscapedPath(), escaped, decoded, err)
		}
		for _, seg := range strings.Split(r.URL.Path, "/") {
			if seg == ".." {
				t.Fatalf("SetPath(%q) left a dot-dot segment: %q", p, r.URL.Path)
			}
		}
	})
}
