package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// BenchmarkGrantAndRevoke measures one full grant life through the SDK,
// the simulator over loopback HTTP, and SQLite: record, authorize with
// tags, record, revoke, record.
func BenchmarkGrantAndRevoke(b *testing.B) {
	b.Run("backstop=off", func(b *testing.B) { benchGrantAndRevoke(b, false) })
	b.Run("backstop=on", func(b *testing.B) { benchGrantAndRevoke(b, true) })
}

func benchGrantAndRevoke(b *testing.B, backstop bool) {
	env := awstest.NewSim(b, ec2sim.Options{RuleLimit: 1000})
	opts := broker.Options{}
	if backstop { // a schedule created per grant and deleted per revoke
		opts.Backstop = latchaws.NewBackstop([]aws.Config{env.Config()}, latchaws.BackstopOptions{RoleARN: "arn:aws:iam::123456789012:role/s"})
	}
	f := newFixture(b, env, opts)
	b.ResetTimer()
	for i := range b.N {
		g, err := f.b.Grant(b.Context(), f.request(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.b.Revoke(b.Context(), g.ID, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSweep measures a sweep that finds n latch rules and revokes all
// of them: the cost of cleaning up after a lost database.
func BenchmarkSweep(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			env := awstest.NewSim(b, ec2sim.Options{RuleLimit: 1000})
			f := newFixture(b, env, broker.Options{})
			fws := []latch.Firewall{env.Firewall(b)}
			for range b.N {
				b.StopTimer()
				for i := range n {
					openDirect(b, f, fmt.Sprintf("10.0.%d.%d/32", i/250, i%250+1), latch.RuleTags(latch.Grant{ID: "g-0000000000000001", ExpiresAt: start.Add(-time.Minute)}))
				}
				b.StartTimer()
				reps, err := broker.Sweep(b.Context(), fws, start, false, nil)
				if err != nil || len(reps[0].Swept) != n {
					b.Fatalf("swept %v, %v; want %d", reps, err, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/rule")
		})
	}
}
