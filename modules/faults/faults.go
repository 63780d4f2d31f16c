// Package faults is the site's `faultInjection` (feature faults, full bundle): for chaos
// testing, a percentage of requests is delayed and/or aborted with a chosen status at
// core.StageFaults, after authentication and redirects. With `headerTrigger: true` a request
// can also ask for a fault with `X-Conduit-Fault: abort|delay`. Never enable it on a
// production site. See docs/http-shaping.md.
package faults

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"faultInjection": Config{}},
		ID:          "http.handlers.faults",
		Feature:     "faults",
		Description: "fault injection for chaos tests: delays and aborts by percentage or request header",
		Stage:       core.StageFaults,
		SiteKeys:    []string{"faultInjection"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
	})
}

// TriggerHeader is the request header that forces a fault when headerTrigger is on.
const TriggerHeader = "X-Conduit-Fault"

// Config is the site's `faultInjection` block.
type Config struct {
	// Abort answers a percentage of requests with Status and Body instead of serving them.
	Abort *Abort `json:"abort"`
	// Delay holds a percentage of requests for Ms milliseconds before serving them.
	Delay *Delay `json:"delay"`
	// HeaderTrigger lets a request force a fault with X-Conduit-Fault: abort, delay or
	// "abort, delay" (an extension of this port; off by default).
	HeaderTrigger bool `json:"headerTrigger"`
}

// Abort is faultInjection.abort.
type Abort struct {
	Percent *float64 `json:"percent" cfg:"required"`
	Status  *int     `json:"status"`
	Body    *string  `json:"body"`
}

// Delay is faultInjection.delay. `durationMs`, the name of ms in the original's JSON Schema
// (docs/compatibility.md), is accepted with a warning.
type Delay struct {
	Percent    *float64 `json:"percent" cfg:"required"`
	Ms         *uint64  `json:"ms"`
	DurationMs *uint64  `json:"durationMs"`
}

const (
	defaultStatus = http.StatusServiceUnavailable
	defaultBody   = "Fault injected"
	maxDelay      = time.Hour
	maxBody       = 64 << 10
)

// abortMark marks an injected abort, so a client can tell it from a real failure.
var abortMark = []string{"abort"}

// Instance is one site's fault stage.
type Instance struct {
	abortPct  float64 // 0–100; 0 disables
	status    int
	body      []byte
	bodyLen   []string
	delayPct  float64
	delay     time.Duration
	trigger   bool
	hasAbort  bool
	hasDelay  bool
	randFloat func() float64 // [0,1); math/rand/v2's per-goroutine source
	sleep     func(ctx context.Context, d time.Duration) bool
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Instance)(nil)
)

// sleep waits for d, reporting false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("faultInjection", &c) {
		return nil
	}
	in := Compile(c, ctx.Path("faultInjection"), ctx.Diag)
	if in == nil {
		return nil
	}
	ctx.Logger.Warn("fault injection is enabled on this site; use it only for tests")
	return in
}

// Compile validates c (found at path) and builds the stage; nil when nothing is configured.
func Compile(c Config, path string, d *config.Diagnostics) *Instance {
	in := &Instance{status: defaultStatus, body: []byte(defaultBody), trigger: c.HeaderTrigger, randFloat: rand.Float64, sleep: sleep}
	if a := c.Abort; a != nil {
		p := config.Join(path, "abort")
		in.hasAbort = true
		if a.Percent != nil {
			in.abortPct = checkPercent(*a.Percent, config.Join(p, "percent"), d)
		}
		if a.Status != nil {
			if *a.Status < 200 || *a.Status > 599 {
				d.Errorf(config.Join(p, "status"), "must be between 200 and 599, got %d", *a.Status)
			} else {
				in.status = *a.Status
			}
		}
		if a.Body != nil {
			if len(*a.Body) > maxBody {
				d.Errorf(config.Join(p, "body"), "must be at most %d bytes", maxBody)
			}
			in.body = []byte(*a.Body)
		}
	}
	if dl := c.Delay; dl != nil {
		p := config.Join(path, "delay")
		in.hasDelay = true
		if dl.Percent != nil {
			in.delayPct = checkPercent(*dl.Percent, config.Join(p, "percent"), d)
		}
		ms := dl.Ms
		switch {
		case dl.Ms == nil && dl.DurationMs != nil:
			ms = dl.DurationMs
			d.Warnf(config.Join(p, "durationMs"), "unknown key \"durationMs\" (the original's JSON Schema name): read as ms; rename it")
		case dl.Ms != nil && dl.DurationMs != nil:
			d.Warnf(config.Join(p, "durationMs"), "unknown key \"durationMs\" ignored because ms is set")
		case dl.Ms == nil:
			d.Errorf(config.Join(p, "ms"), "is required")
		}
		if ms != nil {
			if time.Duration(*ms) > maxDelay/time.Millisecond {
				d.Errorf(config.Join(p, "ms"), "must be at most %d (one hour)", maxDelay/time.Millisecond)
			} else {
				in.delay = time.Duration(*ms) * time.Millisecond
			}
		}
	}
	if !in.hasAbort && !in.hasDelay {
		d.Warnf(path, "has neither abort nor delay; no fault is injected")
		return nil
	}
	in.bodyLen = []string{strconv.Itoa(len(in.body))}
	return in
}

func checkPercent(p float64, path string, d *config.Diagnostics) float64 {
	if p < 0 || p > 100 || p != p {
		d.Errorf(path, "must be between 0 and 100")
		return 0
	}
	return p
}

// roll reports whether an event of pct percent happens for this request.
func (in *Instance) roll(pct float64) bool {
	switch {
	case pct <= 0:
		return false
	case pct >= 100:
		return true
	}
	return in.randFloat()*100 < pct
}

// Wrap implements core.Middleware.
func (in *Instance) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forceAbort, forceDelay := false, false
		if in.trigger {
			if v := r.Header.Get(TriggerHeader); v != "" {
				forceAbort, forceDelay = parseTrigger(v)
				r.Header.Del(TriggerHeader) // never forwarded upstream
			}
		}
		if in.hasDelay && in.delay > 0 && (forceDelay || in.roll(in.delayPct)) {
			if !in.sleep(r.Context(), in.delay) {
				return // the client left while delayed
			}
		}
		if in.hasAbort && (forceAbort || in.roll(in.abortPct)) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = in.bodyLen
			h["X-Conduit-Fault"] = abortMark
			w.WriteHeader(in.status)
			if r.Method != http.MethodHead {
				_, _ = w.Write(in.body)
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// parseTrigger reads X-Conduit-Fault: a comma-separated list of "abort" and "delay".
func parseTrigger(v string) (abort, delay bool) {
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, ",")
		switch strings.ToLower(strings.TrimSpace(item)) {
		case "abort":
			abort = true
		case "delay":
			delay = true
		}
	}
	return abort, delay
}
