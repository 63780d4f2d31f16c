package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// registryCollector exposes a telemetry.Registry to Prometheus. It is an unchecked collector
// (Describe sends nothing) because modules add families and children at any time.
type registryCollector struct {
	reg *telemetry.Registry

	mu    sync.Mutex
	descs map[*telemetry.Family]*prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *registryCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.reg.Families() {
		desc := c.desc(f)
		for _, m := range f.Children() {
			var pm prometheus.Metric
			var err error
			switch f.Kind {
			case telemetry.KindCounter:
				pm, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.Value(), m.LabelValues...)
			case telemetry.KindGauge:
				pm, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.Value(), m.LabelValues...)
			case telemetry.KindHistogram:
				cum := m.Buckets()
				buckets := make(map[float64]uint64, len(cum))
				for i, ub := range f.Buckets {
					buckets[ub] = cum[i]
				}
				pm, err = prometheus.NewConstHistogram(desc, m.Count(), m.Value(), buckets, m.LabelValues...)
			default:
				continue
			}
			if err != nil {
				pm = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- pm
		}
	}
}

func (c *registryCollector) desc(f *telemetry.Family) *prometheus.Desc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.descs[f]; ok {
		return d
	}
	help := f.Help
	if help == "" {
		help = f.Name
	}
	d := prometheus.NewDesc(f.Name, help, f.Labels, nil)
	c.descs[f] = d
	return d
}

// newGatherer returns a private Prometheus registry with the telemetry registry, the Go
// runtime collector and the process collector.
func newGatherer(reg *telemetry.Registry) *prometheus.Registry {
	pr := prometheus.NewRegistry()
	pr.MustRegister(
		&registryCollector{reg: reg, descs: map[*telemetry.Family]*prometheus.Desc{}},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return pr
}

// exposition returns the handler that renders the registry: the Prometheus text format
// (or OpenMetrics when asked), gzip-compressed when the scraper accepts it. One handler
// serves every site and generation of a server.
func exposition(ctx *core.SiteContext) http.Handler {
	return ctx.Shared.Get("http.observe.metrics/exposition", func() any {
		return promhttp.HandlerFor(newGatherer(ctx.Global.Metrics), promhttp.HandlerOpts{
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: false,
		})
	}).(http.Handler)
}
