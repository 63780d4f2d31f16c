// Package telemetry is the one place modules and the pipeline record metrics into: counters,
// gauges and histograms with fixed label names, updated lock-free on the hot path. It
// imports only the standard library; the Prometheus endpoint is a module that reads it.
//
// A Registry lives for the whole process (it survives reloads), so counters keep counting
// across configuration generations. Look children up with With at provision time and keep
// them: With takes a lock, Inc/Add/Observe do not.
package telemetry

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind is the type of a metric family.
type Kind int

const (
	// KindCounter only goes up.
	KindCounter Kind = iota
	// KindGauge goes up and down.
	KindGauge
	// KindHistogram counts observations into buckets.
	KindHistogram
)

// DefaultBuckets are the latency buckets of docs/observability.md, in seconds.
var DefaultBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Registry holds metric families by name.
type Registry struct {
	mu       sync.Mutex
	families map[string]*Family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]*Family{}} }

// Family is one named metric with its children (one per label-value combination).
type Family struct {
	Name    string
	Help    string
	Kind    Kind
	Labels  []string
	Buckets []float64

	mu       sync.Mutex
	children map[string]*Metric
}

// Metric is one child of a family: a counter, gauge or histogram value for one set of label
// values. All methods are safe for concurrent use and allocation-free.
type Metric struct {
	// LabelValues are the values of the family's labels, in order.
	LabelValues []string

	bits    atomic.Uint64 // float64 value for counters and gauges; sum for histograms
	count   atomic.Uint64 // histogram observation count
	buckets []atomic.Uint64
	upper   []float64
}

func (r *Registry) family(name, help string, kind Kind, buckets []float64, labels []string) *Family {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		if f.Kind != kind || !slices.Equal(f.Labels, labels) {
			panic(fmt.Sprintf("telemetry: metric %s registered twice with different shapes", name))
		}
		return f
	}
	f := &Family{Name: name, Help: help, Kind: kind, Labels: labels, Buckets: buckets, children: map[string]*Metric{}}
	r.families[name] = f
	return f
}

// Counter returns the counter family name, creating it on first use.
func (r *Registry) Counter(name, help string, labels ...string) *Family {
	return r.family(name, help, KindCounter, nil, labels)
}

// Gauge returns the gauge family name, creating it on first use.
func (r *Registry) Gauge(name, help string, labels ...string) *Family {
	return r.family(name, help, KindGauge, nil, labels)
}

// Histogram returns the histogram family name with the given upper bounds (nil means
// DefaultBuckets), creating it on first use.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Family {
	if buckets == nil {
		buckets = DefaultBuckets
	}
	return r.family(name, help, KindHistogram, buckets, labels)
}

// With returns the child for the label values, creating it on first use. It takes a lock:
// call it at provision time, or cache its result, not per request.
func (f *Family) With(values ...string) *Metric {
	if len(values) != len(f.Labels) {
		panic(fmt.Sprintf("telemetry: %s takes %d label values, got %d", f.Name, len(f.Labels), len(values)))
	}
	key := strings.Join(values, "\x00")
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.children[key]; ok {
		return m
	}
	m := &Metric{LabelValues: slices.Clone(values)}
	if f.Kind == KindHistogram {
		m.upper = f.Buckets
		m.buckets = make([]atomic.Uint64, len(f.Buckets))
	}
	f.children[key] = m
	return m
}

// Inc adds one.
func (m *Metric) Inc() { m.Add(1) }

// Dec subtracts one (gauges).
func (m *Metric) Dec() { m.Add(-1) }

// Add adds v.
func (m *Metric) Add(v float64) {
	for {
		old := m.bits.Load()
		if m.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Set sets a gauge.
func (m *Metric) Set(v float64) { m.bits.Store(math.Float64bits(v)) }

// Value returns a counter's or gauge's value, or a histogram's sum.
func (m *Metric) Value() float64 { return math.Float64frombits(m.bits.Load()) }

// Observe records one histogram observation.
func (m *Metric) Observe(v float64) {
	i := sort.SearchFloat64s(m.upper, v)
	if i < len(m.buckets) {
		m.buckets[i].Add(1)
	}
	m.count.Add(1)
	m.Add(v)
}

// Count returns a histogram's number of observations.
func (m *Metric) Count() uint64 { return m.count.Load() }

// Buckets returns a histogram's cumulative bucket counts, aligned with the family's Buckets.
func (m *Metric) Buckets() []uint64 {
	out := make([]uint64, len(m.buckets))
	var cum uint64
	for i := range m.buckets {
		cum += m.buckets[i].Load()
		out[i] = cum
	}
	return out
}

// Families returns every family sorted by name.
func (r *Registry) Families() []*Family {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Family, 0, len(r.families))
	for _, f := range r.families {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Children returns the family's children sorted by label values.
func (f *Family) Children() []*Metric {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Metric, 0, len(f.children))
	for _, m := range f.children {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i].LabelValues, "\x00") < strings.Join(out[j].LabelValues, "\x00")
	})
	return out
}
