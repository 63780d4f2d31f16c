package exampleheader

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func TestRegistered(t *testing.T) {
	m, ok := core.ModuleForSiteKey(Key)
	if !ok {
		t.Fatalf("no module owns %q", Key)
	}
	if m.Stage != core.StageResponseHeaders {
		t.Errorf("stage = %v, want %v", m.Stage, core.StageResponseHeaders)
	}
	if m.Package != "github.com/conduitproxy/conduit-example-header" {
		t.Errorf("package = %q", m.Package)
	}
}

func provisionFrom(t *testing.T, section any) (core.SiteInstance, *config.Diagnostics) {
	t.Helper()
	d := &config.Diagnostics{}
	g := core.NewGlobalContext(context.Background(), nil, d, nil, nil)
	site := &core.Site{Path: "sites[0]", Label: "*", Port: 8080}
	ctx := core.NewSiteContext(context.Background(), site, map[string]config.Node{Key: section}, g, http.NotFoundHandler())
	inst := provision(ctx)
	return inst, d
}

func TestProvision(t *testing.T) {
	tests := []struct {
		name      string
		section   any
		wantName  string
		wantValue string
		wantErr   string // substring of the first error, "" for none
	}{
		{"full", map[string]any{"name": "x-demo", "value": "hi"}, "X-Demo", "hi", ""},
		{"default name", map[string]any{"value": "hello"}, "X-Example", "hello", ""},
		{"missing value", map[string]any{"name": "X-A"}, "", "", "sites[0].exampleHeader.value: is required"},
		{"bad name", map[string]any{"name": "X Bad", "value": "v"}, "", "", "sites[0].exampleHeader.name"},
		{"line break", map[string]any{"value": "a\r\nSet-Cookie: x"}, "", "", "line breaks"},
		{"not an object", "hello", "", "", "sites[0].exampleHeader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, d := provisionFrom(t, tt.section)
			if tt.wantErr != "" {
				errs := d.Errors()
				if len(errs) == 0 || !strings.Contains(errs[0].String(), tt.wantErr) {
					t.Fatalf("errors = %v, want one containing %q", errs, tt.wantErr)
				}
				return
			}
			if d.HasErrors() {
				t.Fatalf("unexpected errors: %v", d.Errors())
			}
			h, ok := inst.(*Header)
			if !ok {
				t.Fatalf("instance = %T, want *Header", inst)
			}
			rec := httptest.NewRecorder()
			h.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTeapot)
			})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if got := rec.Header().Get(tt.wantName); got != tt.wantValue {
				t.Errorf("%s = %q, want %q", tt.wantName, got, tt.wantValue)
			}
			if rec.Code != http.StatusTeapot {
				t.Errorf("status = %d; the inner handler must still answer", rec.Code)
			}
		})
	}
}

func TestInnerHandlerCanOverride(t *testing.T) {
	rec := httptest.NewRecorder()
	New("X-Example", "outer").Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Example", "inner")
	})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("X-Example"); got != "inner" {
		t.Errorf("X-Example = %q, want inner", got)
	}
}

func BenchmarkWrap(b *testing.B) {
	h := New("X-Example", "hello").Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
