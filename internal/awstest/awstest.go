// Package awstest gives integration tests an EC2 endpoint to drive through
// the real SDK: the in-repo simulator, or any EC2-compatible endpoint named
// by LATCH_TEST_EC2_ENDPOINT. Tests that need fault injection ask for the
// simulator explicitly and are skipped against an external endpoint.
package awstest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/logging"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
)

// EndpointVar names the external endpoint, when set.
const EndpointVar = "LATCH_TEST_EC2_ENDPOINT"

// Region is the region tests use.
const Region = "us-east-1"

// Env is one test's EC2.
type Env struct {
	URL string
	Sim *ec2sim.Server // nil against an external endpoint
	EC2 *ec2.Client
	cfg aws.Config
}

// New returns the external endpoint if LATCH_TEST_EC2_ENDPOINT is set, else
// a fresh simulator.
func New(t testing.TB) *Env {
	t.Helper()
	if url := os.Getenv(EndpointVar); url != "" {
		return newEnv(t, url, nil)
	}
	return NewSim(t, ec2sim.Options{})
}

// NewSim returns a fresh simulator, whatever LATCH_TEST_EC2_ENDPOINT says:
// for tests that inject faults or inspect the simulator.
func NewSim(t testing.TB, opts ec2sim.Options) *Env {
	t.Helper()
	sim := ec2sim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return newEnv(t, srv.URL, sim)
}

// RequireSim skips the test against an external endpoint and returns the
// simulator.
func (e *Env) RequireSim(t testing.TB) *ec2sim.Server {
	t.Helper()
	if e.Sim == nil {
		t.Skip("needs the in-repo simulator (fault injection); " + EndpointVar + " is set")
	}
	return e.Sim
}

func newEnv(t testing.TB, url string, sim *ec2sim.Server) *Env {
	t.Helper()
	cfg, err := latchaws.LoadConfig(context.Background(), latchaws.Config{
		Region: Region, Endpoint: url, AccessKeyID: "AKIDLATCHTEST", SecretAccessKey: "secret",
		// The fault tests answer half of all calls with an error; 20 attempts
		// make a call fail outright about once in a million.
		MaxAttempts: 20, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	cfg.Logger = logging.Nop{} // the SDK warns when a test server closes a connection it was reading
	return &Env{URL: url, Sim: sim, EC2: ec2.NewFromConfig(cfg), cfg: cfg}
}

// Config is the SDK configuration for this endpoint: short retry backoff,
// so fault tests stay fast.
func (e *Env) Config() aws.Config { return e.cfg.Copy() }

// Firewall returns a firewall on this endpoint.
func (e *Env) Firewall(t testing.TB) *latchaws.Firewall {
	return latchaws.NewFirewall(e.Config(), nil)
}

var groupSeq atomic.Int64

// ManagedGroup creates a security group tagged latch:managed=true, and at
// cleanup revokes every rule left in it, so tests sharing an external
// endpoint do not see each other's rules.
func (e *Env) ManagedGroup(t testing.TB) latch.GroupID {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("latch-test-%d-%d", time.Now().UnixNano(), groupSeq.Add(1))
	out, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String("latch test group"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroup,
			Tags:         []types.Tag{{Key: aws.String(latch.TagManaged), Value: aws.String("true")}},
		}},
	})
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	id := latch.GroupID(aws.ToString(out.GroupId))
	t.Cleanup(func() {
		rules := e.Ingress(t, id)
		if len(rules) == 0 {
			return
		}
		var ids []string
		for _, r := range rules {
			ids = append(ids, aws.ToString(r.SecurityGroupRuleId))
		}
		_, _ = e.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(string(id)), SecurityGroupRuleIds: ids})
	})
	return id
}

// Ingress lists the ingress rules of a group, through the SDK.
func (e *Env) Ingress(t testing.TB, group latch.GroupID) []types.SecurityGroupRule {
	t.Helper()
	var rules []types.SecurityGroupRule
	p := ec2.NewDescribeSecurityGroupRulesPaginator(e.EC2, &ec2.DescribeSecurityGroupRulesInput{
		Filters:    []types.Filter{{Name: aws.String("group-id"), Values: []string{string(group)}}},
		MaxResults: aws.Int32(1000),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("describe rules of %s: %v", group, err)
		}
		for _, r := range page.SecurityGroupRules {
			if !aws.ToBool(r.IsEgress) {
				rules = append(rules, r)
			}
		}
	}
	return rules
}

// Tags returns a rule's tags as a map.
func Tags(r types.SecurityGroupRule) map[string]string {
	m := map[string]string{}
	for _, t := range r.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
