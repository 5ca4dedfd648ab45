package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchdev/latch/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches reg's metrics through metrics.Handler, as Prometheus
// would, and parses the text exposition.
func scrape(t *testing.T, reg *prometheus.Registry) families {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape Content-Type = %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return families{t: t, m: fams}
}

// families is one parsed scrape.
type families struct {
	t *testing.T
	m map[string]*dto.MetricFamily
}

// find returns the sample of name whose labels are exactly labels (name,
// value, name, value…), or nil.
func (f families) find(name string, labels ...string) *dto.Metric {
	fam := f.m[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if matches(m.GetLabel(), labels) {
			return m
		}
	}
	return nil
}

func matches(got []*dto.LabelPair, want []string) bool {
	if len(got)*2 != len(want) {
		return false
	}
	for i, lp := range got { // the exposition sorts labels by name
		if lp.GetName() != want[2*i] || lp.GetValue() != want[2*i+1] {
			return false
		}
	}
	return true
}

// value returns the counter or gauge sample of name with labels, failing
// the test when there is none.
func (f families) value(name string, labels ...string) float64 {
	f.t.Helper()
	m := f.find(name, labels...)
	switch {
	case m == nil:
		f.t.Fatalf("no sample %s%v in scrape", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	f.t.Fatalf("%s%v is neither counter nor gauge", name, labels)
	return 0
}

// want checks counter or gauge samples: pairs of a sample and its value.
func (f families) want(samples ...sample) {
	f.t.Helper()
	for _, s := range samples {
		if got := f.value(s.name, s.labels...); got != s.value {
			f.t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, s.value)
		}
	}
}

type sample struct {
	name   string
	labels []string
	value  float64
}

func s(name string, value float64, labels ...string) sample {
	return sample{name: name, labels: labels, value: value}
}

// histogram returns the histogram sample of name with labels.
func (f families) histogram(name string, labels ...string) *dto.Histogram {
	f.t.Helper()
	m := f.find(name, labels...)
	if m == nil || m.Histogram == nil {
		f.t.Fatalf("no histogram %s%v in scrape", name, labels)
	}
	return m.Histogram
}

// bucket returns the cumulative count of h's bucket with upper bound le.
func bucket(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

// absent checks that the scrape has no family called name.
func (f families) absent(name string) {
	f.t.Helper()
	if fam, ok := f.m[name]; ok {
		f.t.Errorf("%s present in scrape: %v", name, fam)
	}
}
