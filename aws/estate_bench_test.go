package aws_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// The benchmark: a scan's reads of one region with 2,000
// instances and 4,000 security groups, timed, with the calls it makes per
// API; and the test that those calls grow with pages, never with
// instances or groups.

// estateSize is the shape of a generated region.
type estateSize struct{ instances, groups int }

// Generated-estate constants: the IAM roles (one instance profile each)
// instances use, the launch templates, and the page sizes the reader asks
// for, as each API documents its maximum.
const (
	benchRoles     = 50
	benchTemplates = 6
	ec2Page        = 1000 // DescribeSecurityGroups, DescribeSecurityGroupRules, DescribeInstances
	templatePage   = 200  // DescribeLaunchTemplateVersions
	ssmPage        = 50   // DescribeInstanceInformation
	iamPage        = 1000 // ListInstanceProfiles
)

// benchVPCs are the region's VPCs; group i is in benchVPCs[i%2].
var benchVPCs = []ec2sim.FleetVPC{
	{ID: "vpc-0000000a", CIDR: "10.0.0.0/16"},
	{ID: "vpc-0000000b", CIDR: "10.1.0.0/16"},
}

// benchFleet generates a region of size.instances instances and
// size.groups security groups, with the IAM, launch templates and trails
// a scan reads. Every 10th group is latch:managed; groups have one to
// three inbound rules, mostly from CIDRs, some from another group or a
// prefix list, and every 400th opens SSH to the world. Instances have one
// to three groups of their VPC; every 4th names a key pair, every 3rd an
// instance profile (of benchRoles, so many instances share a role), and
// every 2nd has an SSM agent.
func benchFleet(size estateSize) ec2sim.Fleet {
	const ssmCore = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	const ec2Full = "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
	fr := ec2sim.FleetRegion{
		VPCs:     benchVPCs,
		KeyPairs: []ec2sim.FleetKeyPair{{Name: "ops-key"}},
	}
	name := func(i int) string { return fmt.Sprintf("g%05d", i) }
	for i := range size.groups {
		g := ec2sim.FleetGroup{Name: name(i), VPC: benchVPCs[i%2].ID, Description: "generated group " + name(i)}
		if i%10 == 0 {
			g.Tags = map[string]string{latch.TagManaged: "true"}
		}
		g.Rules = append(g.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 443, ToPort: 443,
			CIDR: fmt.Sprintf("10.%d.%d.0/24", i%2, i%250), Description: "HTTPS from the VPC"})
		switch {
		case i%7 == 2: // the group two before is in the same VPC
			g.Rules = append(g.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 8080, ToPort: 8080, SourceGroup: name(i - 2), Description: "from the tier in front"})
		case i%11 == 3:
			g.Rules = append(g.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 5432, ToPort: 5432, PrefixList: "pl-0123abcd", Description: "from the office list"})
		case i%5 == 1:
			g.Rules = append(g.Rules, ec2sim.FleetRule{Protocol: "udp", FromPort: 53, ToPort: 53, CIDR: "10.0.0.0/8"})
		}
		if i%400 == 5 {
			g.Rules = append(g.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0", Description: "SSH from anywhere"})
		}
		fr.SecurityGroups = append(fr.SecurityGroups, g)
	}
	for i := range size.instances {
		// Groups of one VPC (groups alternate between the two): a first
		// of the instance's parity, then steps of 2.
		first := (i*2 + i%2) % size.groups
		in := ec2sim.FleetInstance{
			SecurityGroups: []string{name(first)},
			Tags:           map[string]string{"Name": fmt.Sprintf("host-%05d", i)},
		}
		for k := 1; k <= i%3; k++ {
			in.SecurityGroups = append(in.SecurityGroups, name((first+2*k+2*(i/7))%size.groups))
		}
		slices.Sort(in.SecurityGroups)
		in.SecurityGroups = slices.Compact(in.SecurityGroups)
		if i%4 == 0 {
			in.KeyName = "ops-key"
		}
		if i%3 == 0 {
			in.InstanceProfile = fmt.Sprintf("profile-%02d", i%benchRoles)
		}
		switch i % 6 {
		case 0, 2:
			in.Agent = &ec2sim.FleetAgent{Status: "online"}
		case 4:
			in.Agent = &ec2sim.FleetAgent{Status: "offline"}
		}
		fr.Instances = append(fr.Instances, in)
	}
	for i := range benchTemplates {
		lt := ec2sim.FleetLaunchTemplate{Name: fmt.Sprintf("template-%d", i),
			Versions: []ec2sim.FleetLaunchTemplateVersion{{Image: awstest.TestImage}}}
		if i%2 == 0 {
			lt.Versions[0].KeyName = "ops-key"
		}
		if i%3 == 0 { // a newer version, not the default
			lt.Versions = append(lt.Versions, ec2sim.FleetLaunchTemplateVersion{Image: awstest.TestImage, KeyName: "ops-key"})
		}
		fr.LaunchTemplates = append(fr.LaunchTemplates, lt)
	}
	iam := &ec2sim.FleetIAM{}
	for i := range benchRoles {
		r := ec2sim.FleetRole{Name: fmt.Sprintf("role-%02d", i), ManagedPolicies: []string{ssmCore}}
		switch {
		case i%10 == 0:
			r.ManagedPolicies = []string{ec2Full}
		case i%10 == 1:
			r.ManagedPolicies = nil
			r.InlinePolicies = map[string]string{"sg-admin": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*SecurityGroup*","Resource":"*"}]}`}
		}
		iam.Roles = append(iam.Roles, r)
		iam.InstanceProfiles = append(iam.InstanceProfiles, ec2sim.FleetInstanceProfile{Name: fmt.Sprintf("profile-%02d", i), Role: r.Name})
	}
	// Profiles no instance names: listed, never read further.
	for i := range 20 {
		iam.InstanceProfiles = append(iam.InstanceProfiles, ec2sim.FleetInstanceProfile{Name: fmt.Sprintf("unused-%02d", i), Role: "role-00"})
	}
	return ec2sim.Fleet{
		Regions: map[string]ec2sim.FleetRegion{awstest.Region: fr},
		IAM:     iam,
		Trails: []ec2sim.FleetTrail{
			{Name: "org-trail", HomeRegion: "eu-west-1", MultiRegion: true},
			{Name: "local-reads", HomeRegion: awstest.Region, ReadWrite: "ReadOnly"},
			{Name: "elsewhere", HomeRegion: "us-west-2"}, // does not apply to the region
		},
	}
}

// callCounter counts the requests the SDK sends, per API, whatever the
// service: the X-Amz-Target operation of a JSON API (CloudTrail, SSM),
// or the Action of a Query API (EC2, IAM). It counts on the wire, so SDK
// retries count too.
type callCounter struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	api := "?"
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		api = target[strings.LastIndex(target, ".")+1:]
	} else if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			api = form.Get("Action")
		}
		// A RoundTripper must not change the caller's request.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.mu.Lock()
	c.calls[api]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

// snapshot copies the counts so far.
func (c *callCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// benchEstate loads a generated region of size into a fresh simulator and
// returns a reader calling it without a socket (over TCP the SDK now and
// then retries a large answer, which would count twice), with the counter
// of its calls.
func benchEstate(tb testing.TB, size estateSize) (*latchaws.EstateReader, *callCounter, *ec2sim.Server) {
	tb.Helper()
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(benchFleet(size)); err != nil {
		tb.Fatal(err)
	}
	// Systems Manager answers only callers STS knows.
	if err := sim.AddIdentity(ec2sim.Identity{AccessKeyID: "AKIDLATCHTEST", SecretAccessKey: "secret",
		ARN: "arn:aws:iam::123456789012:user/latch-scan"}); err != nil {
		tb.Fatal(err)
	}
	counter := &callCounter{next: sim.Client().Transport, calls: map[string]int{}}
	cfg := aws.Config{
		Region:       awstest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLATCHTEST", "secret", ""),
		BaseEndpoint: aws.String("http://ec2sim.invalid"),
		HTTPClient:   &http.Client{Transport: counter},
		Retryer:      func() aws.Retryer { return latchaws.Retryer(latchaws.DefaultMaxAttempts, 50*time.Millisecond) },
		Logger:       logging.Nop{},
	}
	return latchaws.NewEstateReader(cfg), counter, sim
}

// estateCounts are what a read estate holds.
type estateCounts struct {
	groups, rules, instances, templates, roles, trails, agents, profiles int
}

func countEstate(est latch.Estate) estateCounts {
	c := estateCounts{groups: len(est.Groups), instances: len(est.Instances), templates: len(est.LaunchTemplates), trails: len(est.Trails)}
	for _, g := range est.Groups {
		c.rules += len(g.Ingress)
	}
	var profiles, roles []string
	for _, in := range est.Instances {
		if in.SSM != "" {
			c.agents++
		}
		if in.InstanceProfile != "" && !slices.Contains(profiles, in.InstanceProfile) {
			profiles = append(profiles, in.InstanceProfile)
		}
	}
	for _, r := range est.Roles {
		if r.Role != "" && !slices.Contains(roles, r.Role) {
			roles = append(roles, r.Role)
		}
	}
	c.profiles, c.roles = len(profiles), len(roles)
	return c
}

// ruleKinds reports whether est has inbound rules from a security group,
// from a prefix list, from a CIDR, and SSH open to the world.
func ruleKinds(est latch.Estate) (kinds [4]bool) {
	for _, g := range est.Groups {
		for _, r := range g.Ingress {
			kinds[0] = kinds[0] || r.SourceGroup != ""
			kinds[1] = kinds[1] || r.PrefixList != ""
			kinds[2] = kinds[2] || r.CIDR.IsValid()
			kinds[3] = kinds[3] || (r.CIDR.Bits() == 0 && r.CoversPort(22))
		}
	}
	return kinds
}

// pages is how many pages of at most size hold n items; a paginator may
// fetch one more, empty, page when the last is full.
func pages(n, size int) int { return max(1, (n+size-1)/size) + 1 }

// estateAPIs are the APIs a scan of one region calls, in the order the
// benchmark reports them.
var estateAPIs = []string{
	"DescribeSecurityGroups", "DescribeSecurityGroupRules", "DescribeInstances",
	"DescribeLaunchTemplateVersions", "DescribeInstanceInformation",
	"ListInstanceProfiles", "GetInstanceProfile", "ListAttachedRolePolicies", "ListRolePolicies", "SimulatePrincipalPolicy",
	"DescribeTrails", "GetEventSelectors",
}

// callBounds is the most calls per API a read of an estate holding c may
// make: a page count for the listings (each group's default outbound rule
// is listed with the inbound ones), one call per distinct role for IAM's
// per-role reads, one per trail for its selectors, none for a profile
// alone (the listing shows them all). An API not named may not be called
// at all.
func callBounds(c estateCounts) map[string]int {
	return map[string]int{
		"DescribeSecurityGroups":         pages(c.groups, ec2Page),
		"DescribeSecurityGroupRules":     pages(c.rules+c.groups, ec2Page),
		"DescribeInstances":              pages(c.instances, ec2Page),
		"DescribeLaunchTemplateVersions": pages(c.templates, templatePage),
		"DescribeInstanceInformation":    pages(c.agents, ssmPage),
		"ListInstanceProfiles":           pages(benchRoles+20, iamPage),
		"GetInstanceProfile":             0, // asked only for a profile the listing missed
		"ListAttachedRolePolicies":       c.roles,
		"ListRolePolicies":               c.roles,
		"SimulatePrincipalPolicy":        c.roles,
		"DescribeTrails":                 1,
		"GetEventSelectors":              c.trails,
	}
}

// A scan's reads grow with pages, not with instances or groups: at 200
// instances and 400 groups, and at 2,000 and 4,000, every API is called
// at most as many times as its pages (or, for IAM's per-role reads,
// exactly once per distinct role, fewer than the instances naming
// them), and no other API is called. A call per instance or per group
// breaks these bounds by hundreds.
func TestReadEstateCallsDoNotGrowPerInstanceOrGroup(t *testing.T) {
	sizes := []estateSize{{instances: 200, groups: 400}, {instances: 2000, groups: 4000}}
	perSize := map[estateSize]map[string]int{}
	for _, size := range sizes {
		t.Run(fmt.Sprintf("%d-instances-%d-groups", size.instances, size.groups), func(t *testing.T) {
			if size.instances > 1000 && testing.Short() {
				t.Skip("the large estate takes over a second to generate, load and read")
			}
			r, counter, sim := benchEstate(t, size)
			est, err := r.ReadEstate(t.Context(), awstest.Region, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(est.NotChecked) > 0 {
				t.Fatalf("not checked: %+v", est.NotChecked)
			}
			c := countEstate(est)
			calls := counter.snapshot()
			perSize[size] = calls
			t.Logf("read %+v in calls %v", c, calls)

			// The estate is what was loaded, so the bounds are not vacuous.
			withProfile := 0
			for _, in := range est.Instances {
				if in.InstanceProfile != "" {
					withProfile++
				}
			}
			if c.instances != size.instances || c.groups < size.groups || c.rules < size.groups ||
				c.roles != benchRoles || withProfile <= c.roles || c.trails != 2 || c.agents == 0 || c.templates == 0 {
				t.Fatalf("read %+v with %d instances naming a profile; want %d instances, at least %d groups and rules, %d roles shared by more instances than roles, 2 trails, agents and templates",
					c, withProfile, size.instances, size.groups, benchRoles)
			}

			if kinds := ruleKinds(est); kinds != [4]bool{true, true, true, true} {
				t.Fatalf("rules from a group, a prefix list, a CIDR and SSH from the world: %v; want all", kinds)
			}

			bounds := callBounds(c)
			for api, n := range calls {
				limit, ok := bounds[api]
				switch {
				case !ok:
					t.Errorf("%s called %d times; a scan does not call it", api, n)
				case n > limit:
					t.Errorf("%s called %d times, want at most %d (%+v)", api, n, limit, c)
				}
			}
			for _, api := range []string{"ListAttachedRolePolicies", "ListRolePolicies", "SimulatePrincipalPolicy"} {
				if calls[api] != c.roles {
					t.Errorf("%s called %d times, want once per distinct role (%d), not per instance (%d name a profile)", api, calls[api], c.roles, withProfile)
				}
			}
			// The simulator saw the same EC2 calls (it counts EC2's and IAM's).
			for _, api := range []string{"DescribeSecurityGroups", "DescribeSecurityGroupRules", "DescribeInstances", "SimulatePrincipalPolicy"} {
				if got := sim.Calls(api); got != calls[api] {
					t.Errorf("the simulator received %s %d times; the client sent it %d", api, got, calls[api])
				}
			}
		})
	}
	// Ten times the estate: IAM and CloudTrail calls the same, the rest
	// at most the extra pages.
	small, large := perSize[sizes[0]], perSize[sizes[1]]
	if small == nil || large == nil {
		return
	}
	for _, api := range []string{"ListAttachedRolePolicies", "ListRolePolicies", "SimulatePrincipalPolicy", "DescribeTrails", "GetEventSelectors", "ListInstanceProfiles"} {
		if small[api] != large[api] {
			t.Errorf("%s: %d calls at %+v, %d at %+v; want the same", api, small[api], sizes[0], large[api], sizes[1])
		}
	}
}

// BenchmarkReadEstate times one scan's reads of a region with 2,000
// instances and 4,000 security groups (with their rules, 50 instance
// roles, launch templates, trails and SSM agents), and reports the calls
// per API per read, the total, and what was read.
func BenchmarkReadEstate(b *testing.B) {
	size := estateSize{instances: 2000, groups: 4000}
	r, counter, _ := benchEstate(b, size)
	ctx := context.Background()
	before := counter.snapshot()
	var est latch.Estate
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if est, err = r.ReadEstate(ctx, awstest.Region, nil); err != nil {
			b.Fatal(err)
		}
	}
	if len(est.NotChecked) > 0 {
		b.Fatalf("not checked: %+v", est.NotChecked)
	}
	after := counter.snapshot()
	total := 0
	for api, n := range after {
		d := n - before[api]
		total += d
		if !slices.Contains(estateAPIs, api) && d > 0 {
			b.Errorf("%s called %d times; a scan does not call it", api, d)
		}
	}
	for _, api := range estateAPIs {
		b.ReportMetric(float64(after[api]-before[api])/float64(b.N), api+"/op")
	}
	b.ReportMetric(float64(total)/float64(b.N), "calls/op")
	c := countEstate(est)
	b.ReportMetric(float64(c.instances), "instances")
	b.ReportMetric(float64(c.groups), "groups")
	b.ReportMetric(float64(c.rules), "rules")
	b.ReportMetric(float64(c.roles), "roles")
}
