package metrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/conduitproxy/conduit/core/telemetry"
)

// TestExpositionParsesWithPrometheus renders a registry with awkward label values and checks
// the output with Prometheus's own text parser (a test-only dependency: the binary does not
// link it).
func TestExpositionParsesWithPrometheus(t *testing.T) {
	reg := telemetry.NewRegistry()
	reg.Counter("c_total", "a counter\nwith \\ help", "route", "status").With(`/a"b\c`+"\n", "200").Add(3)
	reg.Gauge("g", "").With().Set(-1.5)
	h := reg.Histogram("h_seconds", "latency", []float64{0.1, 1}, "upstream").With("http://u:1")
	for _, v := range []float64{0.05, 0.5, 7} {
		h.Observe(v)
	}
	reg.Counter("empty_total", "no children", "x") // families without children are left out
	out := render(nil, reg)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := fams["c_total"].GetMetric()[0]
	if c.GetCounter().GetValue() != 3 || c.GetLabel()[0].GetValue() != `/a"b\c`+"\n" {
		t.Errorf("counter %v", c)
	}
	if fams["c_total"].GetHelp() != "a counter\nwith \\ help" {
		t.Errorf("help %q", fams["c_total"].GetHelp())
	}
	if fams["g"].GetMetric()[0].GetGauge().GetValue() != -1.5 {
		t.Errorf("gauge")
	}
	hist := fams["h_seconds"].GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 3 || hist.GetSampleSum() != 7.55 || len(hist.GetBucket()) != 3 ||
		hist.GetBucket()[0].GetCumulativeCount() != 1 || hist.GetBucket()[1].GetCumulativeCount() != 2 || hist.GetBucket()[2].GetCumulativeCount() != 3 {
		t.Errorf("histogram %v", hist)
	}
	if _, ok := fams["empty_total"]; ok {
		t.Error("empty family rendered")
	}
	for _, name := range []string{"go_goroutines", "go_info", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if _, ok := fams[name]; !ok && (name[:2] == "go" || isLinux()) {
			t.Errorf("missing %s", name)
		}
	}
}

func isLinux() bool { return appendProcess(nil) != nil }

func TestGzipNegotiation(t *testing.T) {
	h := &expositionHandler{reg: telemetry.NewRegistry()}
	for _, tt := range []struct {
		accept string
		gz     bool
	}{{"", false}, {"gzip", true}, {"br, gzip;q=0.5", true}, {"gzip;q=0", false}, {"identity", false}, {"GZIP", true}} {
		r := httptest.NewRequest("GET", "/__metrics__", nil)
		if tt.accept != "" {
			r.Header.Set("Accept-Encoding", tt.accept)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var body io.Reader = w.Body
		if got := w.Header().Get("Content-Encoding") == "gzip"; got != tt.gz {
			t.Errorf("%q: gzip %v", tt.accept, got)
			continue
		}
		if tt.gz {
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		if !strings.Contains(string(b), "go_goroutines") || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Errorf("%q: body %.80q", tt.accept, b)
		}
	}
}

func FuzzLabelValue(f *testing.F) {
	f.Add("a\"b\\c\nd")
	f.Fuzz(func(t *testing.T, v string) {
		reg := telemetry.NewRegistry()
		reg.Counter("x_total", "h", "l").With(v).Inc()
		var b []byte
		for _, fam := range reg.Families() {
			b = appendFamily(b, fam)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
		if err != nil {
			if strings.ToValidUTF8(v, "") != v {
				return // the text format requires UTF-8 label values
			}
			t.Fatalf("%q: %v\n%s", v, err, b)
		}
		if got := fams["x_total"].GetMetric()[0].GetLabel()[0].GetValue(); got != v {
			t.Fatalf("label %q came back as %q", v, got)
		}
	})
}
