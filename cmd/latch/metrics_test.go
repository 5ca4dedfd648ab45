package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics into families.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+",count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+",sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// metricsURL reads the daemon's "metrics listening" line.
func metricsURL(t *testing.T, p *proc) string {
	t.Helper()
	p.waitLine(t, `"msg":"metrics listening"`)
	for _, l := range strings.Split(p.output(), "\n") {
		var rec struct{ Msg, URL string }
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "metrics listening" {
			return rec.URL
		}
	}
	t.Fatal("no metrics URL")
	return ""
}

// After a known sequence (two grants; one expires and is revoked by the
// daemon 30s late), /metrics of `latch run` says exactly that.
func TestRunServesMetrics(t *testing.T) {
	w := newWorld(t)
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		dur := "5m"
		if ip == "203.0.113.2" {
			dur = "30m"
		}
		if r := w.latch(t, "grant", "--sg", string(w.group), "--ip", ip, "--for", dur, "--reason", "m", "--detach"); r.code != 0 {
			t.Fatalf("grant: %s", r.stderr)
		}
	}
	daemon := w.start(t, "", "run", "--metrics-listen", "127.0.0.1:0", "--sweep-interval", "1h")
	url := metricsURL(t, daemon)
	m := waitMetric(t, url, "latch_sweeps_total,region=us-east-1,result=ok", 1)
	if m["latch_grants_active"] != 2 || m["latch_grants_revoke_failed"] != 0 {
		t.Fatalf("before expiry: active %v, revoke-failed %v", m["latch_grants_active"], m["latch_grants_revoke_failed"])
	}
	if m["latch_sweep_rules_found,region=us-east-1"] != 2 {
		t.Errorf("start-up sweep found %v rules, want 2", m["latch_sweep_rules_found,region=us-east-1"])
	}

	w.setClock(t, start.Add(5*time.Minute+30*time.Second))
	w.waitForRules(t, 1)
	waitMetric(t, url, "latch_grants_ended_total,outcome=expired", 1)
	// One scrape is not one instant: Prometheus runs collectors
	// concurrently, so the store's gauge may be read before the end
	// committed while the counter, moved after the commit, is read after.
	// The next scrapes catch up.
	m = waitMetric(t, url, "latch_grants_active", 1)
	want := map[string]float64{
		"latch_grants_active":                                                    1,
		"latch_grants_ended_total,outcome=revoked":                               0,
		"latch_revoke_lag_seconds,count":                                         1,
		"latch_revoke_lag_seconds,sum":                                           30,
		"latch_aws_calls_total,operation=RevokeSecurityGroupIngress,service=EC2": 1,
		"latch_revoke_failures_total":                                            0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if m["latch_aws_calls_total,operation=DescribeSecurityGroupRules,service=EC2"] < 1 {
		t.Error("the sweep's DescribeSecurityGroupRules calls are not counted")
	}
	daemon.stop(t)
}

// waitMetric scrapes until key reaches want: the daemon works on its own.
func waitMetric(t *testing.T, url, key string, want float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, url)
		if m[key] == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, never %v", key, m[key], want)
		}
		time.Sleep(10 * time.Millisecond) // polling another process's counters
	}
}
