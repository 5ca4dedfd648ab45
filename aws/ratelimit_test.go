package aws_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
)

// bubbleFirewall is a firewall on a simulator with EC2's documented
// request throttling, called in-process so that it runs inside a synctest
// bubble: the simulator's buckets refill on the bubble's fake clock, and
// the limiter's waits and the SDK's backoff take no real time.
func bubbleFirewall(t *testing.T, l *latchaws.Limiter) (*latchaws.Firewall, *ec2sim.Server) {
	t.Helper()
	sim := ec2sim.New(ec2sim.Options{Throttle: ec2sim.EC2Throttle()})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String("http://ec2sim.invalid"),
		HTTPClient:   sim.Client(),
		Retryer:      func() aws.Retryer { return latchaws.Retryer(latchaws.DefaultMaxAttempts, latchaws.DefaultMaxBackoff) },
	}
	if l != nil {
		l.Install(&cfg)
	}
	return latchaws.NewFirewall(cfg, nil), sim
}

// burst opens and closes n rules from 20 goroutines at once: 2n
// resource-intensive calls, as a revoker's burst makes. It returns the
// calls that failed.
func burst(fw *latchaws.Firewall, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < n; i += 20 {
				o := opening(ec2sim.DemoWebLatchGroup, fmt.Sprintf("10.0.%d.%d/32", i/256, i%256))
				r, _, err := fw.Authorize(context.Background(), o, tags)
				if err == nil {
					err = fw.Revoke(context.Background(), o.GroupID, r.ID)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// The default limiter keeps a burst of 300 mutating calls under EC2's
// buckets: none is throttled, all succeed.
func TestLimiter_BurstStaysUnderEC2sThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, sim := bubbleFirewall(t, latchaws.NewLimiter(latchaws.DefaultMutatingLimit))
		start := time.Now()
		if errs := burst(fw, 150); len(errs) > 0 {
			t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
		}
		if n := sim.Throttled(""); n != 0 {
			t.Errorf("%d requests throttled, want 0", n)
		}
		if a, r := sim.Calls("AuthorizeSecurityGroupIngress"), sim.Calls("RevokeSecurityGroupIngress"); a != 150 || r != 150 {
			t.Errorf("%d authorizes and %d revokes reached EC2, want 150 each (no retries)", a, r)
		}
		// Authorize and Revoke each have their own bucket, as in EC2: 150
		// calls of each at 4 a second after 40, 27.5 s of the bubble's
		// clock.
		if d := time.Since(start); d < 27*time.Second || d > 31*time.Second {
			t.Errorf("the burst took %v, want about 65s at %v", d, latchaws.DefaultMutatingLimit)
		}
	})
}

// The same burst without the limiter trips EC2's throttle: this is what
// the limiter is for. (The SDK's retries may still get every call through;
// the simulator counts the refusals.)
func TestLimiter_BurstWithoutItIsThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, sim := bubbleFirewall(t, nil)
		errs := burst(fw, 150)
		n := sim.Throttled("")
		if n == 0 {
			t.Errorf("no request throttled without the limiter; the test above proves nothing")
		}
		t.Logf("without the limiter: %d requests throttled, %d calls failed after the SDK's retries", n, len(errs))
	})
}

func TestLimiter_NonMutatingCallsAreNotPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, _ := bubbleFirewall(t, latchaws.NewLimiter(latchaws.Limit{Rate: 0.001, Burst: 1}))
		start := time.Now()
		for range 20 {
			if _, err := fw.Rules(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("20 Describes waited %v", d)
		}
	})
}

func TestLimiter_ClassesAndRegionsHaveTheirOwnBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := latchaws.NewLimiter(latchaws.Limit{Rate: 1, Burst: 1})
		start := time.Now()
		for _, call := range []struct{ region, action string }{
			{"us-east-1", "AuthorizeSecurityGroupIngress"},
			{"us-east-1", "CreateTags"},
			{"us-east-1", "ModifySecurityGroupRules"},
			{"eu-west-1", "RevokeSecurityGroupIngress"},
			{"us-east-1", "DescribeSecurityGroupRules"},
		} {
			if err := l.Wait(t.Context(), call.region, call.action); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("first calls of each class waited %v", d)
		}
		// Revokes have their own bucket: a stream of grants (authorizes)
		// never holds a revoke back.
		if err := l.Wait(t.Context(), "us-east-1", "RevokeSecurityGroupIngress"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("a revoke after an authorize waited %v, want no wait", d)
		}
		if err := l.Wait(t.Context(), "us-east-1", "AuthorizeSecurityGroupIngress"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("a second authorize waited %v, want 1s at 1/s", d)
		}
	})
}

func TestLimiter_WaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := latchaws.NewLimiter(latchaws.Limit{Rate: 0.001, Burst: 1})
		if err := l.Wait(t.Context(), "us-east-1", "RevokeSecurityGroupIngress"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		err := l.Wait(ctx, "us-east-1", "RevokeSecurityGroupIngress")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel = %v, want context.Canceled", err)
		}
	})
}

// A call waiting on the limiter gives up with its context, through the
// SDK too.
func TestLimiter_FirewallCallEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, sim := bubbleFirewall(t, latchaws.NewLimiter(latchaws.Limit{Rate: 0.001, Burst: 1}))
		o := opening(ec2sim.DemoWebLatchGroup, "192.0.2.9/32")
		if _, _, err := fw.Authorize(t.Context(), o, tags); err != nil {
			t.Fatal(err)
		}
		if err := fw.Revoke(t.Context(), o.GroupID, "sgr-00000000000000001"); err != nil { // the bucket's one token
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		err := fw.Revoke(ctx, o.GroupID, "sgr-00000000000000002")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Revoke behind an empty bucket = %v, want it to end with its context", err)
		}
		if n := sim.Calls("RevokeSecurityGroupIngress"); n != 1 {
			t.Errorf("%d revokes reached EC2, want only the first", n)
		}
	})
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]latchaws.Limit{
		"4/40": {Rate: 4, Burst: 40}, "0.5/3": {Rate: 0.5, Burst: 3}, "10": {Rate: 10, Burst: 100},
		"0.05": {Rate: 0.05, Burst: 1}, "off": latchaws.Unlimited, " OFF ": latchaws.Unlimited,
	} {
		if got, err := latchaws.ParseLimit(in); err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "x", "4/0", "4/x", "4/", "/40", "inf", "NaN"} {
		if got, err := latchaws.ParseLimit(in); err == nil {
			t.Errorf("ParseLimit(%q) = %v, want an error", in, got)
		}
	}
	if s := latchaws.DefaultMutatingLimit.String(); s != "4/40" {
		t.Errorf("DefaultMutatingLimit = %s", s)
	}
}
