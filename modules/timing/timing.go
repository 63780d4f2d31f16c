// Package timing adds the response timing headers: `X-Response-Time: <ms>ms` (the site key
// `responseTime`) and the W3C `Server-Timing: total;dur=<ms>, upstream;dur=<ms>` (the site key
// `serverTiming`). Both are measured from the moment the request entered the pipeline to the
// moment the response header is sent; the upstream time is core.State(r).UpstreamDuration, the
// time the proxy spent waiting for upstream response headers.
package timing

import (
	"net/http"
	"strconv"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ID:          "http.observe.timing",
		Feature:     "timing",
		Description: "X-Response-Time and Server-Timing headers",
		Stage:       core.StageResponseTime,
		SiteKeys:    []string{"responseTime", "serverTiming"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
		ConfigTypes: map[string]any{"responseTime": ResponseTime{}, "serverTiming": false},
	})
}

// DefaultDigits is the number of decimal places of X-Response-Time unless
// responseTime.digits says otherwise (Express's response-time middleware uses 3 as well).
const DefaultDigits = 3

// maxDigits bounds responseTime.digits: nanosecond precision is 6 decimal places of a
// millisecond.
const maxDigits = 6

// ResponseTime is the `responseTime` key: a boolean or {digits}.
type ResponseTime struct {
	Enabled bool
	Digits  int
}

// ConfigSchema implements config.SchemaProvider: the shapes UnmarshalConfig accepts.
func (ResponseTime) ConfigSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "boolean"},
		map[string]any{"type": "object", "properties": map[string]any{
			"digits": map[string]any{"type": "integer", "minimum": 0, "maximum": maxDigits, "default": DefaultDigits},
		}},
	}}
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *ResponseTime) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	c.Digits = DefaultDigits
	var o struct {
		Digits *uint8 `json:"digits"`
	}
	if !config.DecodeToggle(n, path, d, "true, false or {digits}", &c.Enabled, &o) {
		return
	}
	if o.Digits != nil {
		if *o.Digits > maxDigits {
			d.Errorf(config.Join(path, "digits"), "must be between 0 and %d", maxDigits)
		}
		c.Digits = int(min(*o.Digits, maxDigits))
	}
}

type timing struct {
	responseTime bool
	digits       int
	serverTiming bool
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*timing)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var rt ResponseTime
	ctx.Decode("responseTime", &rt)
	var st bool
	ctx.Decode("serverTiming", &st)
	if !rt.Enabled && !st {
		return nil
	}
	return &timing{responseTime: rt.Enabled, digits: rt.Digits, serverTiming: st}
}

// Wrap implements core.Middleware.
func (t *timing) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		core.OnHeader(r, t)
		next.ServeHTTP(w, r)
	})
}

// BeforeHeader implements core.HeaderHook: the headers are stamped just before the response
// header is sent, with the time since the request entered the pipeline.
func (t *timing) BeforeHeader(r *http.Request, h http.Header, _ int) {
	st := core.State(r)
	if st == nil {
		return
	}
	total := time.Since(st.Start)
	var buf [64]byte
	if t.responseTime {
		b := strconv.AppendFloat(buf[:0], ms(total), 'f', t.digits, 64)
		b = append(b, "ms"...)
		h["X-Response-Time"] = []string{string(b)}
	}
	if t.serverTiming {
		b := append(buf[:0], "total;dur="...)
		b = strconv.AppendFloat(b, ms(total), 'f', -1, 64)
		if st.Upstream != "" {
			b = append(b, ", upstream;dur="...)
			b = strconv.AppendFloat(b, ms(st.UpstreamDuration), 'f', -1, 64)
		}
		h.Add("Server-Timing", string(b))
	}
}

// ms converts to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
