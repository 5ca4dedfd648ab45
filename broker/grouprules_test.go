package broker_test

import (
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
)

type rulesRecorder struct {
	fullRecorder
	counts map[latch.GroupID]int
}

func (r *rulesRecorder) GroupRules(_ string, counts map[latch.GroupID]int) { r.counts = counts }

// A sweep tells the observer how many latch rules each group holds, so
// that metrics show a group nearing its quota.
func TestSweepCountsRulesPerGroup(t *testing.T) {
	rec := &rulesRecorder{}
	f := newFixture(t, awstest.New(t), broker.Options{Observer: rec})
	for _, src := range []string{"192.0.2.1", "192.0.2.2"} {
		f.grant(t, src, time.Hour)
	}
	if err := f.b.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := rec.counts[f.group]; n != 2 {
		t.Errorf("sweep reported %d rules in %s (%v); want 2", n, f.group, rec.counts)
	}
}
