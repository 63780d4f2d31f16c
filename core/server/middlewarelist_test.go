package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// markEntry is the test module's `middleware[]` entry: on the way in it appends its name to
// the request's X-Trail header (or answers 403 with its name when abort is set); a
// response-phase entry appends its name to the response's X-Resp header instead.
type markEntry struct {
	name     string
	abort    bool
	response bool
}

var (
	_ core.Middleware    = (*markEntry)(nil)
	_ core.ResponsePhase = (*markEntry)(nil)
)

func (m *markEntry) ResponsePhase() bool { return m.response }

func (m *markEntry) Wrap(next http.Handler) http.Handler {
	if m.response {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&markWriter{ResponseWriter: w, name: m.name}, r)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.abort {
			http.Error(w, m.name, http.StatusForbidden)
			return
		}
		r.Header.Add("X-Trail", m.name)
		next.ServeHTTP(w, r)
	})
}

// markWriter appends its entry's name to X-Resp when the status is written.
type markWriter struct {
	http.ResponseWriter
	name string
}

func (w *markWriter) WriteHeader(code int) {
	w.Header().Add("X-Resp", w.name)
	w.ResponseWriter.WriteHeader(code)
}

func (w *markWriter) Write(b []byte) (int, error) { return w.ResponseWriter.Write(b) }

// trailRouter answers every request with the X-Trail values it received.
type trailRouter struct{}

var _ core.Router = trailRouter{}

func (trailRouter) Precedence() int { return core.RouterProxy }
func (trailRouter) Route(*http.Request) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Join(r.Header.Values("X-Trail"), ",")))
	})
}

var registerMarkModule = sync.OnceFunc(func() {
	core.Register(core.Module{
		ID: "test.server.mark", Feature: "testmark", SiteKeys: []string{"testTrail"},
		SiteRoles:       core.RoleRouter,
		Site:            func(*core.SiteContext) core.SiteInstance { return trailRouter{} },
		MiddlewareTypes: []string{"mark"},
		MiddlewareEntry: func(ctx *core.SiteContext, spec core.MiddlewareSpec) core.Middleware {
			var c struct {
				Type  string `json:"type"`
				Name  string `json:"name" cfg:"required"`
				Abort bool   `json:"abort"`
				Phase string `json:"phase"`
			}
			config.Decode(spec.Node, spec.Path, &c, ctx.Diag)
			if c.Type != spec.Type {
				ctx.Errorf(spec.Path, "spec type %q, entry type %q", spec.Type, c.Type)
			}
			return &markEntry{name: c.Name, abort: c.Abort, response: c.Phase == "response"}
		},
	})
})

// TestMiddlewareListOrder: entries run in declaration order on the way in, the first abort
// wins (later entries never run), and response-phase entries see the response in
// declaration order, wherever they stand among request-phase ones.
func TestMiddlewareListOrder(t *testing.T) {
	registerMarkModule()
	for _, tc := range []struct {
		name     string
		entries  string
		status   int
		body     string
		wantResp []string
	}{
		{"declaration order", `[{type: mark, name: a}, {type: mark, name: b}, {type: mark, name: c}]`, 200, "a,b,c", nil},
		{"first abort wins", `[{type: mark, name: a}, {type: mark, name: stop, abort: true}, {type: mark, name: late, abort: true}]`, 403, "stop\n", nil},
		{"response phase in declaration order", `[{type: mark, name: r1, phase: response}, {type: mark, name: a}, {type: mark, name: r2, phase: response}]`, 200, "a", []string{"r1", "r2"}},
		{"abort skips response phase", `[{type: mark, name: r1, phase: response}, {type: mark, name: no, abort: true}]`, 403, "no\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := testtool.FreePort(t)
			s := servertest.Start(t, "port: "+strconv.Itoa(port)+"\ntestTrail: true\nmiddleware: "+tc.entries+"\n")
			r := servertest.Get(t, s.URL(port)+"/")
			if r.Status != tc.status || r.Body != tc.body {
				t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, tc.status, tc.body)
			}
			if got := r.Header.Values("X-Resp"); strings.Join(got, ",") != strings.Join(tc.wantResp, ",") {
				t.Fatalf("X-Resp = %q, want %q", got, tc.wantResp)
			}
		})
	}
}

// TestMiddlewareListErrors: every malformed entry is an error at its exact path, an
// unknown type suggests the nearest one, and reserved types of the original schema are
// refused (guards) or warned about (headers).
func TestMiddlewareListErrors(t *testing.T) {
	registerMarkModule()
	for _, tc := range []struct {
		name, entries, path, msg string
		warn                     bool
	}{
		{"not a list", `{type: mark}`, "middleware", "must be an array", false},
		{"entry not an object", `[mark]`, "middleware[0]", "must be an object with a type", false},
		{"type missing", `[{name: a}]`, "middleware[0].type", "is required", false},
		{"misspelt type", `[{type: mark, name: a}, {type: makr, name: b}]`, "middleware[1].type", `did you mean "mark"`, false},
		{"unknown type", `[{type: lua, name: a}]`, "middleware[0].type", `unknown middleware type "lua"`, false},
		{"entry key error at its path", `[{type: mark}]`, "middleware[0].name", "required", false},
		{"reserved guard type", `[{type: ipFilter}]`, "middleware[0].type", "refusing to serve", false},
		{"reserved headers type", `[{type: headers}]`, "middleware[0].type", "ignored", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\ntestTrail: true\nmiddleware: "+tc.entries+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			list := d.Errors()
			if tc.warn {
				if len(list) != 0 {
					t.Fatalf("errors %v, want none", list)
				}
				list = d.Warnings()
			}
			if len(list) != 1 || list[0].Path != tc.path || !strings.Contains(list[0].Message, tc.msg) {
				t.Fatalf("diagnostics %v, want one at %s containing %q", list, tc.path, tc.msg)
			}
		})
	}
}
