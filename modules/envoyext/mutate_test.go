package envoyext

import (
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMutations(t *testing.T) {
	opt := func(k, v string, app *wrapperspb.BoolValue, act corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: app, AppendAction: act}
	}
	for _, tc := range []struct {
		name   string
		opt    *corev3.HeaderValueOption
		before []string
		want   []string
		err    bool
	}{
		{"default overwrites", opt("x-a", "new", nil, 0), []string{"old"}, []string{"new"}, false},
		{"append true", opt("x-a", "new", wrapperspb.Bool(true), 0), []string{"old"}, []string{"old", "new"}, false},
		{"append false beats action", opt("x-a", "new", wrapperspb.Bool(false), corev3.HeaderValueOption_ADD_IF_ABSENT), []string{"old"}, []string{"new"}, false},
		{"add if absent, present", opt("x-a", "new", nil, corev3.HeaderValueOption_ADD_IF_ABSENT), []string{"old"}, []string{"old"}, false},
		{"add if absent, absent", opt("x-a", "new", nil, corev3.HeaderValueOption_ADD_IF_ABSENT), nil, []string{"new"}, false},
		{"overwrite if exists, absent", opt("x-a", "new", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS), nil, nil, false},
		{"overwrite if exists, present", opt("x-a", "new", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS), []string{"old"}, []string{"new"}, false},
		{"raw value", &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-a", RawValue: []byte("raw")}}, nil, []string{"raw"}, false},
		{"bad name", opt("x a", "v", nil, 0), nil, nil, true},
		{"CRLF value", opt("x-a", "v\r\nx-b: 1", nil, 0), nil, nil, true},
		{"NUL value", opt("x-a", "v\x00", nil, 0), nil, nil, true},
		{"pseudo header ignored", opt(":path", "/admin", nil, 0), nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			muts, err := ParseMutations([]*corev3.HeaderValueOption{tc.opt}, Upstream)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			h := http.Header{}
			if tc.before != nil {
				h["X-A"] = tc.before
			}
			Apply(h, muts)
			if strings.Join(h["X-A"], "|") != strings.Join(tc.want, "|") {
				t.Fatalf("X-A = %q, want %q", h["X-A"], tc.want)
			}
		})
	}
	for _, name := range []string{"host", "Content-Length", "transfer-encoding", "connection", "x-forwarded-for", "x-request-id", "via"} {
		muts, err := ParseMutations([]*corev3.HeaderValueOption{opt(name, "x", nil, 0)}, Upstream)
		if err != nil || len(muts) != 0 {
			t.Errorf("%s: the gateway's header was not ignored: %v %v", name, muts, err)
		}
	}
	// Towards the client only the framing headers are off limits.
	if muts, _ := ParseMutations([]*corev3.HeaderValueOption{opt("x-request-id", "x", nil, 0)}, Client); len(muts) != 1 {
		t.Error("x-request-id refused on a client reply")
	}
}

// FuzzMutations: whatever a service sends, the mutations that parse without error only
// produce header names and values that can be sent, never a name the gateway owns.
func FuzzMutations(f *testing.F) {
	f.Add("x-user", "alice", false, int32(0), "authorization")
	f.Add("Host", "evil", true, int32(2), ":path")
	f.Add("x-a", "v\r\nx-b: 1", false, int32(9), "x a")
	f.Fuzz(func(t *testing.T, name, value string, app bool, act int32, remove string) {
		o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, Value: value},
			AppendAction: corev3.HeaderValueOption_HeaderAppendAction(act)}
		if app {
			o.Append = wrapperspb.Bool(true)
		}
		for _, side := range []Side{Upstream, Client} {
			muts, err := ParseMutations([]*corev3.HeaderValueOption{o}, side)
			names, nerr := ParseNames([]string{remove}, side)
			if err != nil || nerr != nil {
				continue
			}
			h := http.Header{}
			Apply(h, muts)
			for k, vv := range h {
				if !httpguts.ValidHeaderFieldName(k) || Ignored(k, side) {
					t.Fatalf("mutation produced header %q", k)
				}
				for _, v := range vv {
					if !httpguts.ValidHeaderFieldValue(v) {
						t.Fatalf("mutation produced value %q", v)
					}
				}
			}
			for _, n := range names {
				if Ignored(n, side) || strings.HasPrefix(n, ":") {
					t.Fatalf("removal of %q allowed", n)
				}
			}
		}
	})
}
