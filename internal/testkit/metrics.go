package testkit

import (
	"bytes"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ParseMetrics parses body, a /metrics answer, as Prometheus does. It
// fails the test when body does not parse.
func ParseMetrics(tb testing.TB, body []byte) map[string]*dto.MetricFamily {
	tb.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// MetricValue returns the value of the first sample of family name whose
// labels include labels ("k=v" pairs): a counter's or gauge's value, a
// histogram's sample count. It fails the test when there is no such family
// or sample.
func MetricValue(tb testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	tb.Helper()
	fam := fams[name]
	if fam == nil {
		tb.Fatalf("no metric %s", name)
	}
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	tb.Fatalf("no sample of %s with %v", name, labels)
	return 0
}

// Sample is a value a test expects of a metric: that of the sample
// MetricValue finds for Name and Labels.
type Sample struct {
	Name   string
	Labels []string // "k=v" pairs the sample's labels include
	Value  float64
}

// CheckMetrics reports each of want whose value in fams is another.
func CheckMetrics(tb testing.TB, fams map[string]*dto.MetricFamily, want []Sample) {
	tb.Helper()
	for _, w := range want {
		if got := MetricValue(tb, fams, w.Name, w.Labels...); got != w.Value {
			tb.Errorf("%s%v = %v, want %v", w.Name, w.Labels, got, w.Value)
		}
	}
}
