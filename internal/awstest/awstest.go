// Package awstest gives integration tests an EC2 endpoint to drive through
// the real SDK: the in-repo simulator, or any EC2-compatible endpoint named
// by LATCH_TEST_EC2_ENDPOINT.
//
// Against an external endpoint a test builds what it needs through the
// SDK, as it would in a real account: security groups ([Env.ManagedGroup],
// [Env.Group]), instances ([Env.Instance], RunInstances, terminated at
// cleanup) and their tags. What the SDK cannot give is simulator-only, and
// [Env.RequireSim] skips the test with the reason it states: fault
// injection, the simulator's clock, CloudTrail's delivery delay, console
// output with host keys, the Instance Connect keys an sshd reads, rule
// limits, schedules fired on demand.
//
// # What an external endpoint must provide
//
// EC2 (security groups, rules, tags, RunInstances, TerminateInstances,
// DescribeInstances) and STS GetCallerIdentity in region us-east-1 at one
// base URL, and STS identities (access key, secret, ARN) for the keys the
// tests sign with:
//
//	AKIDLATCHTEST  secret          arn:aws:iam::123456789012:user/AKIDLATCHTEST
//	AKIDALICE      alice-secret    arn:aws:sts::123456789012:assumed-role/dev/alice
//	AKIDBOB        bob-secret      arn:aws:sts::123456789012:assumed-role/dev/bob
//	AKIDMALLORY    mallory-secret  arn:aws:sts::123456789012:assumed-role/contractor/mallory
//	AKIDAL         al-secret       arn:aws:iam::123456789012:user/alice
//	AKIDBOBIAM     bob-iam-secret  arn:aws:iam::123456789012:user/bob
//	AKIDEVE        eve-secret      arn:aws:sts::999988887777:assumed-role/dev/eve
//
// (the ec2sim command's -identity flag; scripts/test starts it so). A test
// that needs an identity the endpoint does not know skips, saying which
// ([Env.Identity] asks STS).
//
// # Counting requests
//
// Against an external endpoint each Env talks to it through a counting
// reverse proxy on 127.0.0.1, whose URL is [Env.URL], so that calls from
// the test, from the latch code it runs and from processes it starts are
// all counted. When LATCH_TEST_REACH_LOG names a file, each Env appends
// one line "PACKAGE TEST REQUESTS OUTCOME" to it at cleanup (OUTCOME is
// ran, skipped or failed; O_APPEND, one small write, safe across test
// processes): scripts/test sums them into how many tests reached the
// endpoint. A test skipped after its set-up called the endpoint is logged
// as skipped, and does not count as having run against it.
package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
)

// EndpointVar names the external endpoint, when set.
const EndpointVar = "LATCH_TEST_EC2_ENDPOINT"

// ReachLogVar names the file each Env on an external endpoint appends its
// request count to, when set.
const ReachLogVar = "LATCH_TEST_REACH_LOG"

// Region is the region tests use.
const Region = "us-east-1"

// Env is one test's EC2.
type Env struct {
	URL string
	Sim *ec2sim.Server // nil against an external endpoint
	EC2 *ec2.Client
	cfg aws.Config
}

// External reports whether tests run against an external endpoint.
func External() bool { return os.Getenv(EndpointVar) != "" }

// New returns the external endpoint if LATCH_TEST_EC2_ENDPOINT is set, else
// a fresh simulator.
func New(t testing.TB) *Env {
	t.Helper()
	if target := os.Getenv(EndpointVar); target != "" {
		return newEnv(t, countingProxy(t, target), nil)
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

// RequireSim skips the test against an external endpoint, saying why it
// needs the in-repo simulator, and returns the simulator.
func (e *Env) RequireSim(t testing.TB, why string) *ec2sim.Server {
	t.Helper()
	if e.Sim == nil {
		t.Skipf("simulator only: %s (%s is set)", why, EndpointVar)
	}
	return e.Sim
}

// countingProxy serves a reverse proxy to target on 127.0.0.1 for the
// rest of the test, counts the requests it forwards, and reports them at
// cleanup. It forwards the Host header it was sent, which is the one the
// caller signed (SigV4 signs the host), and flushes at once, so streamed
// answers stream.
func countingProxy(t testing.TB, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("%s=%q is not a URL: %v", EndpointVar, target, err)
	}
	var n atomic.Int64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		// A fresh connection per request: a kept-alive one the endpoint
		// closes just as a call is sent fails that call, which the SDK then
		// retries, and a retried create or authorize that had taken effect
		// answers Duplicate. Loopback connections cost little.
		Transport:     noKeepAlive(),
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // a caller that hangs up is not news
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		// The request body is read whole before forwarding: Go's HTTP/1
		// server ends an unread inbound body once the response starts,
		// and the transport still waiting on it would then close the
		// endpoint's connection mid-answer (go.dev/issue/40747). AWS
		// requests are small.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { reportReach(t, n.Load()) }) // runs after srv.Close, so every request is in
	t.Cleanup(srv.Close)
	return srv.URL
}

// reportReach appends "PACKAGE TEST REQUESTS OUTCOME" to the reach log,
// if one is named.
func reportReach(t testing.TB, requests int64) {
	name := os.Getenv(ReachLogVar)
	if name == "" {
		return
	}
	outcome := "ran"
	switch {
	case t.Skipped():
		outcome = "skipped"
	case t.Failed():
		outcome = "failed"
	}
	line := fmt.Sprintf("%s %s %d %s\n", packagePath(), t.Name(), requests, outcome)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Errorf("reach log: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Errorf("reach log: %v", err)
	}
}

// packagePath is the test's package directory relative to the module
// root (cmd/latch), found from the working directory, which go test sets
// to the package's.
func packagePath() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return "."
			}
			return filepath.ToSlash(rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Base(wd)
		}
		dir = parent
	}
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

// Identity makes STS name the access key key (signing with secret) arn.
// On the simulator it adds the identity; an external endpoint must have
// been started knowing it (see the package comment), and the test is
// skipped, saying so, when its STS does not name the key arn.
func (e *Env) Identity(t testing.TB, key, secret, arn string) {
	t.Helper()
	if e.Sim != nil {
		if err := e.Sim.AddIdentity(ec2sim.Identity{AccessKeyID: key, SecretAccessKey: secret, ARN: arn}); err != nil {
			t.Fatal(err)
		}
		return
	}
	cfg := e.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(key, secret, "")
	cfg.RetryMaxAttempts = 1
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	switch {
	case err != nil:
		t.Skipf("needs the endpoint's STS to know access key %s as %s: GetCallerIdentity: %v", key, arn, err)
	case aws.ToString(out.Arn) != arn:
		t.Skipf("needs the endpoint's STS to name access key %s %s; it names it %s", key, arn, aws.ToString(out.Arn))
	}
}

// Config is the SDK configuration for this endpoint: short retry backoff,
// so fault tests stay fast.
func (e *Env) Config() aws.Config { return e.cfg.Copy() }

// Firewall returns a firewall on this endpoint.
func (e *Env) Firewall(t testing.TB) *latchaws.Firewall {
	return latchaws.NewFirewall(e.Config(), nil)
}

var groupSeq atomic.Int64

// Unique returns prefix with a suffix no other test's has, for names on a
// shared endpoint: random, since test processes share no counter and a
// clock may repeat (a testing/synctest bubble's always starts at the same
// instant).
func Unique(prefix string) string {
	return fmt.Sprintf("%s-%016x-%d", prefix, rand.Uint64(), groupSeq.Add(1))
}

// ManagedGroup creates a security group tagged latch:managed=true, and at
// cleanup revokes every rule left in it, so tests sharing an external
// endpoint do not see each other's rules.
func (e *Env) ManagedGroup(t testing.TB) latch.GroupID {
	t.Helper()
	return e.Group(t, map[string]string{latch.TagManaged: "true"})
}

// Group creates a security group with a unique name and these tags, and at
// cleanup revokes every rule left in it.
func (e *Env) Group(t testing.TB, tags map[string]string) latch.GroupID {
	t.Helper()
	ctx := context.Background()
	out, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(Unique("latch-test")),
		Description:       aws.String("latch test group"),
		TagSpecifications: tagSpecs(types.ResourceTypeSecurityGroup, tags),
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

func tagSpecs(rt types.ResourceType, tags map[string]string) []types.TagSpecification {
	if len(tags) == 0 {
		return nil
	}
	spec := types.TagSpecification{ResourceType: rt}
	for k, v := range tags {
		spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return []types.TagSpecification{spec}
}

// TestImage is the AMI instances are launched from. The simulator takes
// any well-formed ID; a real account would need one that exists.
const TestImage = "ami-0123456789abcdef0"

// Instance launches one running instance in groups with tags through
// RunInstances, and terminates it at cleanup. It returns its ID.
func (e *Env) Instance(t testing.TB, tags map[string]string, groups ...latch.GroupID) string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for _, g := range groups {
		ids = append(ids, string(g))
	}
	out, err := e.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(TestImage), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SecurityGroupIds:  ids,
		TagSpecifications: tagSpecs(types.ResourceTypeInstance, tags),
	})
	if err != nil {
		t.Fatalf("run instance: %v", err)
	}
	if len(out.Instances) != 1 {
		t.Fatalf("run instance: %d instances, want 1", len(out.Instances))
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	t.Cleanup(func() {
		_, err := e.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		var ae interface{ ErrorCode() string }
		if err != nil && !(errors.As(err, &ae) && ae.ErrorCode() == "InvalidInstanceID.NotFound") {
			t.Errorf("terminate %s: %v", id, err)
		}
	})
	return id
}

// Fleet is the demo fleet's shape ([ec2sim.DemoFleet]) built through the
// SDK: web-1 and web-2 (env=dev, app=web) in the groups Default, App and
// the managed WebGroup; db-1 (env=prod, app=db) in Default and the managed
// DBGroup. App, unmanaged, allows HTTPS from anywhere (IPv4 and IPv6), as
// the demo's does. Names are unique per test, so tests on a shared
// endpoint never find each other's instances by name.
type Fleet struct {
	Web1, Web2, DB1             string // instance IDs
	Web1Name, Web2Name, DB1Name string // their Name tags
	WebGroup, DBGroup           latch.GroupID
	DefaultGroup, AppGroup      latch.GroupID // unmanaged
}

// DemoFleet builds a [Fleet] on e.
func (e *Env) DemoFleet(t testing.TB) Fleet {
	t.Helper()
	f := Fleet{
		WebGroup: e.ManagedGroup(t), DBGroup: e.ManagedGroup(t),
		DefaultGroup: e.Group(t, nil), AppGroup: e.Group(t, map[string]string{"Name": "app"}),
	}
	https := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
		IpRanges:   []types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("HTTPS from anywhere")}},
		Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0"), Description: aws.String("HTTPS from anywhere")}}}
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(string(f.AppGroup)), IpPermissions: []types.IpPermission{https}}); err != nil {
		t.Fatalf("authorize HTTPS in the app group: %v", err)
	}
	f.Web1Name, f.Web2Name, f.DB1Name = Unique("web-1"), Unique("web-2"), Unique("db-1")
	f.Web1 = e.Instance(t, map[string]string{"Name": f.Web1Name, "env": "dev", "app": "web"}, f.DefaultGroup, f.AppGroup, f.WebGroup)
	f.Web2 = e.Instance(t, map[string]string{"Name": f.Web2Name, "env": "dev", "app": "web"}, f.DefaultGroup, f.AppGroup, f.WebGroup)
	f.DB1 = e.Instance(t, map[string]string{"Name": f.DB1Name, "env": "prod", "app": "db"}, f.DefaultGroup, f.DBGroup)
	return f
}

// Rules lists a group's ingress rules through the SDK, shaped as the
// simulator's [ec2sim.Rule] snapshots.
func (e *Env) Rules(t testing.TB, group latch.GroupID) []ec2sim.Rule {
	t.Helper()
	var out []ec2sim.Rule
	for _, r := range e.Ingress(t, group) {
		cidr := aws.ToString(r.CidrIpv4)
		if cidr == "" {
			cidr = aws.ToString(r.CidrIpv6)
		}
		rule := ec2sim.Rule{
			ID: aws.ToString(r.SecurityGroupRuleId), GroupID: aws.ToString(r.GroupId), Protocol: aws.ToString(r.IpProtocol),
			FromPort: int(aws.ToInt32(r.FromPort)), ToPort: int(aws.ToInt32(r.ToPort)), CIDR: cidr,
			Description: aws.ToString(r.Description), Tags: Tags(r), PrefixList: aws.ToString(r.PrefixListId),
		}
		if g := r.ReferencedGroupInfo; g != nil {
			rule.SourceGroup = aws.ToString(g.GroupId)
		}
		out = append(out, rule)
	}
	return out
}

// noKeepAlive is the default transport without keep-alive.
func noKeepAlive() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableKeepAlives = true
	return t
}
