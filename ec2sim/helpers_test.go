package ec2sim_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch/ec2sim"
)

// mustStart serves sim over TCP for the life of the test.
func mustStart(t testing.TB, sim *ec2sim.Server) string {
	t.Helper()
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return ts.URL
}

// newClient is an SDK client for the simulator at url. Retries keep the
// SDK's standard policy but without backoff or retry quota, so fault tests
// are fast and count attempts exactly.
func newClient(t testing.TB, url, region string) *ec2.Client {
	t.Helper()
	return ec2.NewFromConfig(simConfig(t, url, region))
}

// simConfig is the SDK configuration every test client uses: the
// simulator's URL, static credentials, and retries with no backoff or quota.
func simConfig(t testing.TB, url, region string) aws.Config {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return aws.Config{
		HTTPClient:   &http.Client{Transport: hideWriterTo{tr}},
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// hideWriterTo works around a client-side race in smithy-go. The SDK
// wraps request bodies in a reader whose WriteTo returns io.EOF once
// closed, and closes it as soon as response headers arrive. net/http, after
// sending Content-Length bytes, copies the body once more to check for
// extra bytes; if the response beat that copy, the copy fails with io.EOF
// and net/http closes the connection under the response still being read.
// The SDK then retries a call that already took effect. Against a server as
// quick as the simulator this happens to requests over 4 KiB (the write
// buffer), so tests that send big requests would flake without it.
type hideWriterTo struct{ rt http.RoundTripper }

func (h hideWriterTo) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return h.rt.RoundTrip(req)
}

// mustSim starts a simulator with the demo fleet and returns it with a
// us-east-1 client.
func mustSim(t testing.TB, opts ec2sim.Options) (*ec2sim.Server, *ec2.Client) {
	t.Helper()
	sim := ec2sim.New(opts)
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatalf("LoadFleet(demo) = %v", err)
	}
	return sim, newClient(t, mustStart(t, sim), "us-east-1")
}

// errorCode returns the EC2 error code of err, or "" when err is nil or
// not an API error.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := errorCode(err); got != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func ssh(cidr string) types.IpPermission {
	return types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String("ssh")}},
	}
}

func ssh6(cidr string) types.IpPermission {
	return types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String(cidr)}},
	}
}

func tagSpec(kv ...string) []types.TagSpecification {
	var tags []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroupRule, Tags: tags}}
}

func mustAuthorize(t testing.TB, c *ec2.Client, group string, perms ...types.IpPermission) []types.SecurityGroupRule {
	t.Helper()
	out, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(group), IpPermissions: perms,
	})
	if err != nil {
		t.Fatalf("AuthorizeSecurityGroupIngress(%s) = %v", group, err)
	}
	return out.SecurityGroupRules
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func ruleIDs(rules []types.SecurityGroupRule) []string {
	var ids []string
	for _, r := range rules {
		ids = append(ids, aws.ToString(r.SecurityGroupRuleId))
	}
	return ids
}

// ingressOnly drops the outbound rules DescribeSecurityGroupRules lists
// beside the inbound ones (every group has its default one).
func ingressOnly(rules []types.SecurityGroupRule) []types.SecurityGroupRule {
	var out []types.SecurityGroupRule
	for _, r := range rules {
		if !aws.ToBool(r.IsEgress) {
			out = append(out, r)
		}
	}
	return out
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// bareSim is mustSim without the demo fleet, for tests that count what
// they made (the demo fleet has key pairs and templates of its own).
func bareSim(t testing.TB, opts ec2sim.Options) (*ec2sim.Server, *ec2.Client) {
	t.Helper()
	sim := ec2sim.New(opts)
	return sim, newClient(t, mustStart(t, sim), "us-east-1")
}
