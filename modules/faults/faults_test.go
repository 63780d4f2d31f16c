package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
)

func fp(v float64) *float64 { return &v }
func up(v uint64) *uint64   { return &v }
func ip(v int) *int         { return &v }
func sp(v string) *string   { return &v }

func paths(list []config.Diagnostic) string {
	var out []string
	for _, x := range list {
		out = append(out, x.Path)
	}
	return strings.Join(out, " ")
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name  string
		node  config.Node
		errs  string
		warns string
	}{
		{"kitchen sink", map[string]config.Node{"abort": map[string]config.Node{"percent": 50.0, "status": 503.0}}, "", ""},
		{"percent required", map[string]config.Node{"abort": map[string]config.Node{"status": 500.0}}, "f.abort.percent", ""},
		{"percent range", map[string]config.Node{"abort": map[string]config.Node{"percent": 101.0}, "delay": map[string]config.Node{"percent": -1.0, "ms": 5.0}}, "f.abort.percent f.delay.percent", ""},
		{"status range", map[string]config.Node{"abort": map[string]config.Node{"percent": 1.0, "status": 99.0}}, "f.abort.status", ""},
		{"ms required", map[string]config.Node{"delay": map[string]config.Node{"percent": 1.0}}, "f.delay.ms", ""},
		{"durationMs alias", map[string]config.Node{"delay": map[string]config.Node{"percent": 1.0, "durationMs": 10.0}}, "", "f.delay.durationMs"},
		{"ms too long", map[string]config.Node{"delay": map[string]config.Node{"percent": 1.0, "ms": 3600001.0}}, "f.delay.ms", ""},
		{"empty", map[string]config.Node{}, "", "f"},
		{"unknown key", map[string]config.Node{"abort": map[string]config.Node{"percent": 1.0, "code": 500.0}}, "", "f.abort.code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d config.Diagnostics
			var c Config
			config.Decode(tt.node, "f", &c, &d)
			Compile(c, "f", &d)
			if got := paths(d.Errors()); got != tt.errs {
				t.Fatalf("errors at %q, want %q: %v", got, tt.errs, d.Errors())
			}
			if got := paths(d.Warnings()); got != tt.warns {
				t.Fatalf("warnings at %q, want %q: %v", got, tt.warns, d.Warnings())
			}
		})
	}
}

func serve(in *Instance, hdr ...string) (*httptest.ResponseRecorder, bool) {
	reached := false
	h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = r.Header.Get(TriggerHeader) == "" // the trigger header never goes on
		w.WriteHeader(200)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, reached
}

func compile(t *testing.T, c Config) *Instance {
	t.Helper()
	var d config.Diagnostics
	in := Compile(c, "f", &d)
	if d.HasErrors() || in == nil {
		t.Fatalf("compile: %v", d.Errors())
	}
	return in
}

func TestAbortAtZeroAndHundredPercent(t *testing.T) {
	never := compile(t, Config{Abort: &Abort{Percent: fp(0)}})
	always := compile(t, Config{Abort: &Abort{Percent: fp(100), Status: ip(418), Body: sp("teapot fault")}})
	for i := 0; i < 200; i++ {
		if rec, reached := serve(never); rec.Code != 200 || !reached {
			t.Fatalf("0%%: %d", rec.Code)
		}
		rec, reached := serve(always)
		if rec.Code != 418 || reached || rec.Body.String() != "teapot fault" || rec.Header().Get("Content-Length") != "12" || rec.Header().Get(TriggerHeader) != "abort" {
			t.Fatalf("100%%: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
		}
	}
	def := compile(t, Config{Abort: &Abort{Percent: fp(100)}})
	if rec, _ := serve(def); rec.Code != 503 || rec.Body.String() != "Fault injected" {
		t.Fatalf("defaults: %d %q", rec.Code, rec.Body.String())
	}
}

// TestPercentUsesTheRandomSource pins the source to show the comparison: a draw below the
// percentage faults, one at or above it does not.
func TestPercentUsesTheRandomSource(t *testing.T) {
	in := compile(t, Config{Abort: &Abort{Percent: fp(25)}})
	for draw, want := range map[float64]int{0: 503, 0.2499: 503, 0.25: 200, 0.9: 200} {
		in.randFloat = func() float64 { return draw }
		if rec, _ := serve(in); rec.Code != want {
			t.Errorf("draw %v: %d, want %d", draw, rec.Code, want)
		}
	}
}

func TestHeaderTrigger(t *testing.T) {
	off := compile(t, Config{Abort: &Abort{Percent: fp(0)}})
	if rec, _ := serve(off, TriggerHeader, "abort"); rec.Code != 200 {
		t.Fatalf("trigger without headerTrigger: %d", rec.Code)
	}
	on := compile(t, Config{Abort: &Abort{Percent: fp(0)}, HeaderTrigger: true})
	if rec, _ := serve(on, TriggerHeader, "Abort"); rec.Code != 503 {
		t.Fatalf("trigger: %d", rec.Code)
	}
	if rec, reached := serve(on, TriggerHeader, "nothing"); rec.Code != 200 || !reached {
		t.Fatalf("unknown trigger: %d, header stripped %v", rec.Code, reached)
	}
	if rec, reached := serve(on); rec.Code != 200 || !reached {
		t.Fatalf("no trigger: %d", rec.Code)
	}
}

// TestDelay uses a fake sleep: the request waits for exactly the configured delay, and a
// client that leaves during the delay is not served.
func TestDelay(t *testing.T) {
	in := compile(t, Config{Delay: &Delay{Percent: fp(100), Ms: up(250)}, Abort: &Abort{Percent: fp(0)}, HeaderTrigger: true})
	asked := make(chan time.Duration, 1)
	release := make(chan bool)
	in.sleep = func(_ context.Context, d time.Duration) bool {
		asked <- d
		return <-release
	}
	done := make(chan int)
	go func() {
		rec, _ := serve(in)
		done <- rec.Code
	}()
	if d := <-asked; d != 250*time.Millisecond {
		t.Fatalf("delay %v", d)
	}
	select {
	case code := <-done:
		t.Fatalf("served (%d) before the delay ended", code)
	default:
	}
	release <- true
	if code := <-done; code != 200 {
		t.Fatalf("after delay: %d", code)
	}
	// The client gives up during the delay: nothing is served.
	go func() {
		rec, reached := serve(in)
		if reached {
			done <- -1
			return
		}
		done <- rec.Code
	}()
	<-asked
	release <- false
	if code := <-done; code != 200 { // recorder default: nothing written
		t.Fatalf("abandoned request: %d", code)
	}

	// 0% delays nothing; the header forces it.
	zero := compile(t, Config{Delay: &Delay{Percent: fp(0), Ms: up(5)}, HeaderTrigger: true})
	zero.sleep = in.sleep
	if rec, _ := serve(zero); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	select {
	case d := <-asked:
		t.Fatalf("0%% delayed %v", d)
	default:
	}
	go func() {
		rec, _ := serve(zero, TriggerHeader, "delay, abort")
		done <- rec.Code
	}()
	<-asked
	release <- true
	if code := <-done; code != 200 { // abort not configured: only the delay applies
		t.Fatalf("triggered delay: %d", code)
	}
}

func TestRealSleepHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if sleep(ctx, time.Hour) {
		t.Fatal("sleep ignored a cancelled context")
	}
	if !sleep(context.Background(), time.Microsecond) {
		t.Fatal("sleep reported cancellation")
	}
}

func FuzzParseTrigger(f *testing.F) {
	for _, s := range []string{"abort", "delay", "abort, delay", " ABORT ,", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, d := parseTrigger(s)
		l := strings.ToLower(s)
		if a && !strings.Contains(l, "abort") || d && !strings.Contains(l, "delay") {
			t.Fatalf("parseTrigger(%q) = %v %v", s, a, d)
		}
	})
}
