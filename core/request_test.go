package core

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type recordHook struct {
	name string
	log  *[]string
}

func (h recordHook) BeforeHeader(r *http.Request, hdr http.Header, status int) {
	*h.log = append(*h.log, h.name)
	hdr.Set("X-"+h.name, r.URL.Path)
}

func TestHeaderHooksRunOnceBeforeTheFinalHeader(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		runs  bool
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(201) }, true},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, true},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, true},
		{"1xx then 200", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(200) }, true},
		{"twice", func(w http.ResponseWriter) { w.WriteHeader(200); w.WriteHeader(500) }, true},
		{"nothing", func(w http.ResponseWriter) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			h := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				OnHeader(r, recordHook{"A", &log})
				OnHeader(r, recordHook{"B", &log})
				tt.write(w)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/p", nil))
			want := ""
			if tt.runs {
				want = "A,B"
			}
			if got := strings.Join(log, ","); got != want {
				t.Fatalf("hooks ran %q, want %q", got, want)
			}
			if tt.runs && (rec.Header().Get("X-A") != "/p" || rec.Header().Get("X-B") != "/p") {
				t.Fatalf("headers %v", rec.Header())
			}
		})
	}
}

func TestHeaderHooksAreBoundedAndFree(t *testing.T) {
	var log []string
	h := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range maxHeaderHooks + 2 {
			if ok := OnHeader(r, recordHook{"h", &log}); ok != (i < maxHeaderHooks) {
				t.Errorf("hook %d accepted=%v", i, ok)
			}
		}
		w.WriteHeader(200)
		if OnHeader(r, recordHook{"late", &log}) {
			t.Error("a hook registered after the header was sent")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if len(log) != maxHeaderHooks {
		t.Fatalf("%d hooks ran", len(log))
	}
	// Registering and running a hook costs no allocation: compare with a request without.
	hook := &countHook{}
	with := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		OnHeader(r, hook)
		w.WriteHeader(204)
	}))
	without := WithState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)
	with.ServeHTTP(w, r)
	base := testing.AllocsPerRun(200, func() { without.ServeHTTP(w, r) })
	n := testing.AllocsPerRun(200, func() { with.ServeHTTP(w, r) })
	if n != base || hook.n == 0 {
		t.Fatalf("%v allocations per request with a hook, %v without (hook ran %d times)", n, base, hook.n)
	}
}

type countHook struct{ n int }

func (c *countHook) BeforeHeader(*http.Request, http.Header, int) { c.n++ }
