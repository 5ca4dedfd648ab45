package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	latchaws "github.com/latchdev/latch/aws"
)

// --aws-mutating-rate (or LATCH_AWS_MUTATING_RATE) sets the pace of every
// region's mutating EC2 calls, one limiter for them all; by default it is
// below EC2's documented throttle.
func TestAWSMutatingRate(t *testing.T) {
	for env, want := range map[string]latchaws.Limit{
		"":       latchaws.DefaultMutatingLimit,
		"20/100": {Rate: 20, Burst: 100},
		"off":    latchaws.Unlimited,
	} {
		a, _, err := withEnv(t, map[string]string{"LATCH_AWS_MUTATING_RATE": env}, "sweep")
		if err != nil {
			t.Fatalf("LATCH_AWS_MUTATING_RATE=%q: %v", env, err)
		}
		a.log = slog.New(slog.DiscardHandler)
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			if _, err := a.awsConfig(t.Context(), region); err != nil {
				t.Fatal(err)
			}
		}
		if a.mutating == nil || a.mutating.Limit() != want {
			t.Errorf("LATCH_AWS_MUTATING_RATE=%q: limiter %v, want %v", env, a.mutating, want)
		}
	}
}

func TestAWSMutatingRateRefusesBadValues(t *testing.T) {
	for _, v := range []string{"0", "fast", "4/0"} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"sweep", "--aws-mutating-rate", v}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "aws-mutating-rate") || !strings.Contains(stderr.String(), "want") {
			t.Errorf("--aws-mutating-rate %s: exit %d, %s; want 2 and a message naming the flag and what is allowed", v, code, stderr.String())
		}
	}
}
