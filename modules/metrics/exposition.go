package metrics

import (
	"compress/gzip"
	"math"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// The exposition is written by hand in the Prometheus text format 0.0.4 rather than through
// prometheus/client_golang: the library and its protobuf dependencies add 2.3 MB to the
// minimal binary (13.4 MB against its 12 MB budget), and rendering three metric kinds is a
// page of code. The output follows the format's rules: HELP and TYPE lines, label values
// escaped (\\, \", \n), cumulative `le` buckets ending in +Inf, _sum and _count.

const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// exposition returns the handler that renders the registry plus the Go runtime and process
// metrics, gzip-compressed when the scraper accepts it. One handler serves every site and
// generation of a server.
func exposition(ctx *core.SiteContext) http.Handler {
	return core.SharedOf(ctx.Shared, "http.observe.metrics/exposition", func() http.Handler {
		return &expositionHandler{reg: ctx.Global.Metrics}
	})
}

type expositionHandler struct {
	reg  *telemetry.Registry
	bufs sync.Pool
}

func (h *expositionHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bp, _ := h.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := render((*bp)[:0], h.reg)
	hdr := w.Header()
	hdr.Set("Content-Type", textContentType)
	hdr.Set("Cache-Control", "no-store")
	hdr.Add("Vary", "Accept-Encoding")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
	} else if acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		_, _ = zw.Write(b)
		_ = zw.Close()
	} else {
		hdr.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	}
	*bp = b
	h.bufs.Put(bp)
}

func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			if _, q, ok := strings.Cut(strings.ReplaceAll(params, " ", ""), "q="); ok {
				f, err := strconv.ParseFloat(q, 64)
				return err == nil && f > 0
			}
			return true
		}
	}
	return false
}

// render appends the whole exposition.
func render(b []byte, reg *telemetry.Registry) []byte {
	for _, f := range reg.Families() {
		b = appendFamily(b, f)
	}
	b = appendRuntime(b)
	return appendProcess(b)
}

func appendHeader(b []byte, name, help, typ string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	for i := 0; i < len(help); i++ {
		switch help[i] {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, help[i])
		}
	}
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

func appendFamily(b []byte, f *telemetry.Family) []byte {
	children := f.Children()
	if len(children) == 0 {
		return b
	}
	typ := "counter"
	switch f.Kind {
	case telemetry.KindGauge:
		typ = "gauge"
	case telemetry.KindHistogram:
		typ = "histogram"
	}
	help := f.Help
	if help == "" {
		help = f.Name
	}
	b = appendHeader(b, f.Name, help, typ)
	for _, m := range children {
		if f.Kind != telemetry.KindHistogram {
			b = appendSample(b, f.Name, "", f.Labels, m.LabelValues, "", m.Value())
			continue
		}
		cum := m.Buckets()
		for i, ub := range f.Buckets {
			b = appendSample(b, f.Name, "_bucket", f.Labels, m.LabelValues, formatFloat(ub), float64(cum[i]))
		}
		count := float64(m.Count())
		b = appendSample(b, f.Name, "_bucket", f.Labels, m.LabelValues, "+Inf", count)
		b = appendSample(b, f.Name, "_sum", f.Labels, m.LabelValues, "", m.Value())
		b = appendSample(b, f.Name, "_count", f.Labels, m.LabelValues, "", count)
	}
	return b
}

// appendSample writes `name_suffix{l1="v1",…[,le="…"]} value`.
func appendSample(b []byte, name, suffix string, labels, values []string, le string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) > 0 || le != "" {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, l...)
			b = append(b, `="`...)
			b = appendLabelValue(b, values[i])
			b = append(b, '"')
		}
		if le != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, formatFloat(v)...)
	return append(b, '\n')
}

func appendLabelValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// runtimeSamples are the Go runtime metrics exposed under their usual Prometheus names.
var runtimeSamples = []struct {
	key, name, help, typ string
}{
	{"/sched/goroutines:goroutines", "go_goroutines", "Number of goroutines that currently exist.", "gauge"},
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", "gauge"},
	{"/memory/classes/heap/objects:bytes", "go_memstats_alloc_bytes", "Number of bytes allocated in heap objects and still in use.", "gauge"},
	{"/gc/heap/allocs:bytes", "go_memstats_alloc_bytes_total", "Total number of bytes allocated in the heap.", "counter"},
	{"/memory/classes/total:bytes", "go_memstats_sys_bytes", "Number of bytes obtained from the system.", "gauge"},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total", "Number of completed GC cycles.", "counter"},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "Heap size target for the end of the GC cycle.", "gauge"},
}

func appendRuntime(b []byte) []byte {
	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, s := range runtimeSamples {
		samples[i].Name = s.key
	}
	metrics.Read(samples)
	for i, s := range runtimeSamples {
		var v float64
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case metrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue // not supported by this Go version
		}
		b = appendHeader(b, s.name, s.help, s.typ)
		b = appendSample(b, s.name, "", nil, nil, "", v)
	}
	b = appendHeader(b, "go_info", "Information about the Go environment.", "gauge")
	return appendSample(b, "go_info", "", []string{"version"}, []string{runtime.Version()}, "", 1)
}
