package aws_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

func opening(group latch.GroupID, src string) latch.Opening {
	return latch.Opening{Region: awstest.Region, GroupID: group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix(src)}
}

var tags = map[string]string{latch.TagGrantID: "g-0123456789abcdef", latch.TagExpiresAt: "2026-11-23T10:00:00Z", latch.TagRequester: "alice"}

func TestAuthorizeCreatesThenAdopts(t *testing.T) {
	env := awstest.New(t)
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	for _, src := range []string{"203.0.113.7/32", "2001:db8::7/128"} {
		r, created, err := fw.Authorize(t.Context(), opening(group, src), tags)
		if err != nil || !created {
			t.Fatalf("Authorize(%s) = %v, %v; want created", src, created, err)
		}
		if r.Opening != opening(group, src) || r.Tags[latch.TagExpiresAt] != tags[latch.TagExpiresAt] {
			t.Errorf("rule = %+v", r)
		}
		again, created, err := fw.Authorize(t.Context(), opening(group, src), map[string]string{latch.TagGrantID: "other"})
		if err != nil || created || again.ID != r.ID {
			t.Fatalf("second Authorize(%s) = %s, %v, %v; want the existing %s, not created", src, again.ID, created, err, r.ID)
		}
		if again.Tags[latch.TagGrantID] != tags[latch.TagGrantID] {
			t.Errorf("adopting changed the tags: %v", again.Tags)
		}
	}
	if n := len(env.Ingress(t, group)); n != 2 {
		t.Errorf("%d rules, want 2", n)
	}
}

func TestErrorsAreTranslated(t *testing.T) {
	env := awstest.New(t)
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	if _, _, err := fw.Authorize(t.Context(), opening("sg-0000000000000dead", "203.0.113.7/32"), tags); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Authorize(unknown group) = %v, want ENOTFOUND", err)
	}
	if err := fw.Tag(t.Context(), "sgr-0000000000000dead", tags); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Tag(unknown rule) = %v, want ENOTFOUND", err)
	}
	if err := fw.Revoke(t.Context(), group, "sgr-0000000000000dead"); err != nil {
		t.Errorf("Revoke(unknown rule) = %v, want nil: gone counts as revoked", err)
	}
	r, _, err := fw.Authorize(t.Context(), opening(group, "203.0.113.7/32"), tags)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := fw.Revoke(t.Context(), group, r.ID); err != nil {
			t.Fatalf("Revoke = %v", err)
		}
	}
}

func TestQuotaIsAConflict(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1})
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	if _, _, err := fw.Authorize(t.Context(), opening(group, "203.0.113.1/32"), tags); err != nil {
		t.Fatal(err)
	}
	_, _, err := fw.Authorize(t.Context(), opening(group, "203.0.113.2/32"), tags)
	if latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("Authorize over quota = %v, want ECONFLICT", err)
	}
}

// Rules lists only tagged ingress rules latch can represent, across pages
// and groups.
func TestRulesListsTaggedRules(t *testing.T) {
	env := awstest.New(t)
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	if _, _, err := fw.Authorize(t.Context(), opening(group, "203.0.113.1/32"), tags); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fw.Authorize(t.Context(), opening(group, "203.0.113.2/32"), map[string]string{"owner": "terraform"}); err != nil {
		t.Fatal(err)
	}
	_, err := env.EC2.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(string(group)),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("198.51.100.0/24")}}}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroupRule,
			Tags: []types.Tag{{Key: aws.String(latch.TagExpiresAt), Value: aws.String("2026-11-23T10:00:00Z")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := fw.Rules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var mine []latch.Rule
	for _, r := range rules {
		if r.Opening.GroupID == group {
			mine = append(mine, r)
		}
	}
	if len(mine) != 2 {
		t.Fatalf("Rules() in the group = %+v, want the 2 tagged ones", mine)
	}
	for _, r := range mine {
		if _, ok, err := r.ExpiresAt(); !ok || err != nil {
			t.Errorf("rule %s has no readable expiry", r.ID)
		}
	}
}

// When a rule's tags move to another grant, its description follows, for
// both address families; the rule keeps its ID, source and ports.
func TestTagMovesTheDescription(t *testing.T) {
	env := awstest.New(t)
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	for _, src := range []string{"203.0.113.7/32", "2001:db8::7/128"} {
		r, _, err := fw.Authorize(t.Context(), opening(group, src), tags)
		if err != nil {
			t.Fatal(err)
		}
		moved := map[string]string{latch.TagGrantID: "g-fedcba9876543210", latch.TagExpiresAt: "2026-11-23T09:30:00Z", latch.TagRequester: "bob"}
		if err := fw.Tag(t.Context(), r.ID, moved); err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, x := range env.Ingress(t, group) {
			if latch.RuleID(aws.ToString(x.SecurityGroupRuleId)) != r.ID {
				continue
			}
			found = true
			if got := aws.ToString(x.Description); got != "latch g-fedcba9876543210" {
				t.Errorf("%s: description %q, want it to name the grant the tags name", src, got)
			}
			if awstest.Tags(x)[latch.TagGrantID] != "g-fedcba9876543210" || aws.ToInt32(x.FromPort) != 22 ||
				aws.ToString(x.CidrIpv4)+aws.ToString(x.CidrIpv6) != netip.MustParsePrefix(src).String() {
				t.Errorf("%s: rule changed shape: %+v", src, x)
			}
		}
		if !found {
			t.Fatalf("rule %s is gone", r.ID)
		}
	}
}

// TestRevokeManyOneCallAndGoneRules: a batch of existing rules is one
// RevokeSecurityGroupIngress; a batch naming rules already gone (which EC2
// fails whole) still revokes the others and names the gone ones; a batch
// over the limit is refused.
func TestRevokeManyOneCallAndGoneRules(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 300})
	revokes := 0  // calls, once each whatever the SDK's retries
	attempts := 0 // requests sent, retries included
	cfg := env.Config()
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		if err := st.Finalize.Add(middleware.FinalizeMiddlewareFunc("countAttempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "RevokeSecurityGroupIngress" {
					attempts++
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After); err != nil {
			return err
		}
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("countRevokes",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "RevokeSecurityGroupIngress" {
					revokes++
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	fw := latchaws.NewFirewall(cfg, nil)
	group := env.ManagedGroup(t)
	var ids []latch.RuleID
	for i := range latch.MaxRevokeBatch {
		r, _, err := fw.Authorize(t.Context(), opening(group, fmt.Sprintf("10.0.%d.%d/32", i/200, i%200+1)), tags)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}

	gone, err := fw.RevokeMany(t.Context(), group, ids[:150])
	if err != nil || len(gone) != 0 {
		t.Fatalf("RevokeMany(150 rules) = %v, %v; want none gone, nil", gone, err)
	}
	if n := revokes; n != 1 {
		t.Errorf("RevokeMany(150 rules) made %d Revoke calls, want 1", n)
	}

	// 10 already revoked, one never existed, 50 still there.
	mixed := append(slices.Clone(ids[140:]), "sgr-0000000000000dead")
	calls0, attempts0 := revokes, attempts
	gone, err = fw.RevokeMany(t.Context(), group, mixed)
	if err != nil {
		t.Fatalf("RevokeMany(mixed) = %v", err)
	}
	want := append(slices.Clone(ids[140:150]), "sgr-0000000000000dead")
	switch retried := attempts-attempts0 > revokes-calls0; {
	case !retried && !slices.Equal(gone, want):
		t.Errorf("gone = %v, want %v", gone, want)
	case retried && (len(gone) < len(want) || !slices.Equal(gone[:len(want)], want)):
		// A retried revoke that had already taken effect (a response lost
		// on a loaded machine) finds its own rules gone: they count as
		// gone, after those that were gone before.
		t.Errorf("gone = %v, want it to begin with %v", gone, want)
	}
	if n := len(env.Ingress(t, group)); n != 0 {
		t.Errorf("%d rules left in the group, want 0", n)
	}

	// The group is gone too: everything counts as gone.
	if gone, err := fw.RevokeMany(t.Context(), "sg-0000000000000dead", ids[:3]); err != nil || len(gone) != 3 {
		t.Errorf("RevokeMany(unknown group) = %v, %v; want all 3 gone", gone, err)
	}
	if _, err := fw.RevokeMany(t.Context(), group, make([]latch.RuleID, latch.MaxRevokeBatch+1)); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("RevokeMany(%d rules) = %v, want EINVALID", latch.MaxRevokeBatch+1, err)
	}
}
