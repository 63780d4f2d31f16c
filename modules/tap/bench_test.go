package tap

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })

// serve runs b.N requests through h inside the core's per-request state, as the server does.
func serve(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "http://example.com/api/users?id=1", nil)
	w := &nopWriter{h: http.Header{}}
	site := &core.Site{Label: "*"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, r := core.AcquireState(w, req, site, time.Time{})
		h.ServeHTTP(&st.Writer, r)
		core.ReleaseState(st)
	}
}

// BenchmarkNoStage is the baseline: the pipeline without the tap stage.
func BenchmarkNoStage(b *testing.B) { serve(b, okHandler) }

// BenchmarkStageIdle is the tap stage while nobody taps: the number to compare with
// BenchmarkNoStage.
func BenchmarkStageIdle(b *testing.B) {
	s := &stage{b: newBroker(), site: "*"}
	serve(b, s.Wrap(okHandler))
}

// BenchmarkStageTapped is the stage with one matching tap whose events are drained.
func BenchmarkStageTapped(b *testing.B) {
	br := newBroker()
	sub, _ := br.subscribe(&Filter{})
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sub.ch:
			case <-done:
				return
			}
		}
	}()
	defer close(done)
	s := &stage{b: br, site: "*"}
	serve(b, s.Wrap(okHandler))
}

// BenchmarkStageTappedElsewhere is the stage with one tap whose filter refuses the request.
func BenchmarkStageTappedElsewhere(b *testing.B) {
	br := newBroker()
	_, _ = br.subscribe(&Filter{Sites: []string{"other.example"}})
	s := &stage{b: br, site: "*"}
	serve(b, s.Wrap(okHandler))
}

// TestIdleStageAllocatesNothing pins the idle cost at zero allocations.
func TestIdleStageAllocatesNothing(t *testing.T) {
	s := &stage{b: newBroker(), site: "*"}
	h := s.Wrap(okHandler)
	req := httptest.NewRequest("GET", "http://example.com/", nil)
	w := &nopWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Fatalf("idle stage: %v allocations per request", n)
	}
}

// BenchmarkBareHandler and BenchmarkBareStageIdle isolate the stage's own cost: the same
// handler called directly and through the idle stage, without the per-request state.
func BenchmarkBareHandler(b *testing.B) { bare(b, okHandler) }

// BenchmarkBareStageIdle: see BenchmarkBareHandler.
func BenchmarkBareStageIdle(b *testing.B) {
	s := &stage{b: newBroker(), site: "*"}
	bare(b, s.Wrap(okHandler))
}

func bare(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "http://example.com/api/users?id=1", nil)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, req)
	}
}
