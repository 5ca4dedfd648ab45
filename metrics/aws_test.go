package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// webLatch is a latch-managed group of ec2sim's demo fleet.
const webLatch = "sg-0f00dcafe0000b001"

// awsConfig is a config for the unmodified SDK against url, counted by m.
// Its retryer is the SDK's standard one (3 attempts) with a backoff of at
// most a millisecond, so retries are quick.
func awsConfig(m *metrics.Metrics, url string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
		},
		APIOptions: []func(*middleware.Stack) error{m.AWSMiddleware()},
	}
}

func newSim(t *testing.T) (*ec2sim.Server, string) {
	t.Helper()
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return sim, ts.URL
}

func TestAWSMiddleware(t *testing.T) {
	sim, url := newSim(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	c := ec2.NewFromConfig(awsConfig(m, url))
	ctx := t.Context()
	const (
		describe = "DescribeSecurityGroupRules"
		revoke   = "RevokeSecurityGroupIngress"
	)

	// One call, one attempt.
	if _, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{}); err != nil {
		t.Fatal(err)
	}

	// An error AWS answers is not retried, and is counted by its code.
	_, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(webLatch), SecurityGroupRuleIds: []string{"sgr-0123456789abcdef0"},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")

	// Throttled twice, then through: one call, three attempts, no error.
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Limit: 2})
	if _, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{}); err != nil {
		t.Fatalf("describe after two throttles: %v", err)
	}

	// Throttled more often than the SDK retries: the last answer's code.
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Limit: 3})
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(webLatch), SecurityGroupRuleIds: []string{"sgr-0123456789abcdef0"},
	})
	wantCode(t, err, "RequestLimitExceeded")

	// The attempts counted are the requests the simulator received.
	if n := sim.Calls(describe); n != 4 {
		t.Fatalf("simulator saw %d %s requests, want 4", n, describe)
	}
	if n := sim.Calls(revoke); n != 4 {
		t.Fatalf("simulator saw %d %s requests, want 4", n, revoke)
	}
	f := scrape(t, reg)
	f.want(
		s("latch_aws_calls_total", 2, "operation", describe, "service", "EC2"),
		s("latch_aws_attempts_total", 4, "operation", describe, "service", "EC2"),
		s("latch_aws_calls_total", 2, "operation", revoke, "service", "EC2"),
		s("latch_aws_attempts_total", 4, "operation", revoke, "service", "EC2"),
		s("latch_aws_errors_total", 1, "code", "InvalidSecurityGroupRuleId.NotFound", "operation", revoke, "service", "EC2"),
		s("latch_aws_errors_total", 1, "code", "RequestLimitExceeded", "operation", revoke, "service", "EC2"),
	)
	if n := len(f.m["latch_aws_errors_total"].GetMetric()); n != 2 {
		t.Errorf("latch_aws_errors_total has %d series, want 2: %v", n, f.m["latch_aws_errors_total"])
	}
}

func TestAWSMiddleware_Network(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	ts := httptest.NewServer(nil)
	ts.Close() // nothing listens at its address now
	c := ec2.NewFromConfig(awsConfig(m, ts.URL))

	_, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{})
	if err == nil {
		t.Fatal("describe against a closed port succeeded")
	}

	scrape(t, reg).want(
		s("latch_aws_calls_total", 1, "operation", "DescribeSecurityGroupRules", "service", "EC2"),
		s("latch_aws_attempts_total", 3, "operation", "DescribeSecurityGroupRules", "service", "EC2"), // refused connections are retried
		s("latch_aws_errors_total", 1, "code", "network", "operation", "DescribeSecurityGroupRules", "service", "EC2"),
	)
}

func TestAWSMiddleware_Canceled(t *testing.T) {
	_, url := newSim(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	c := ec2.NewFromConfig(awsConfig(m, url))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("describe with a canceled context: %v, want context.Canceled", err)
	}

	f := scrape(t, reg)
	f.want(
		s("latch_aws_calls_total", 1, "operation", "DescribeSecurityGroupRules", "service", "EC2"),
		s("latch_aws_errors_total", 1, "code", "canceled", "operation", "DescribeSecurityGroupRules", "service", "EC2"),
	)
	f.absent("latch_aws_attempts_total") // the SDK gave up before its first attempt
}

// Presigning signs a request for someone else to send (latch's awsauth
// does, for STS): no call is made, so none is counted.
func TestAWSMiddleware_PresignNotCounted(t *testing.T) {
	_, url := newSim(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	presigner := sts.NewPresignClient(sts.NewFromConfig(awsConfig(m, url)))

	if _, err := presigner.PresignGetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}

	f := scrape(t, reg)
	f.absent("latch_aws_calls_total")
	f.absent("latch_aws_attempts_total")
	f.absent("latch_aws_errors_total")
}

// The STS client is counted like EC2, under its own service ID.
func TestAWSMiddleware_OtherService(t *testing.T) {
	env := awstest.New(t)
	env.Identity(t, "AKIDLATCHTEST", "secret", "arn:aws:iam::123456789012:user/AKIDLATCHTEST")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	cfg := awsConfig(m, env.URL)
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDLATCHTEST", "secret", "")

	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}

	scrape(t, reg).want(
		s("latch_aws_calls_total", 1, "operation", "GetCallerIdentity", "service", "STS"),
		s("latch_aws_attempts_total", 1, "operation", "GetCallerIdentity", "service", "STS"),
	)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}
