package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
)

// unmanagedGroup creates a security group without latch:managed=true, and
// at cleanup revokes any rule left in it.
func unmanagedGroup(t *testing.T, env *awstest.Env) latch.GroupID {
	t.Helper()
	ctx := context.Background()
	out, err := env.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(fmt.Sprintf("latch-test-unmanaged-%d", time.Now().UnixNano())),
		Description: aws.String("latch test group, not managed"),
	})
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	id := latch.GroupID(aws.ToString(out.GroupId))
	t.Cleanup(func() {
		for _, r := range env.Ingress(t, id) {
			_, _ = env.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(string(id)),
				SecurityGroupRuleIds: []string{aws.ToString(r.SecurityGroupRuleId)}})
		}
	})
	return id
}

// The engine opens only groups tagged latch:managed=true, whoever calls
// it: a group without the tag is refused before anything is recorded or
// any rule is made.
func TestGrantRefusesAGroupNotTaggedManaged(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	group := unmanagedGroup(t, env)
	req := f.request("203.0.113.7", 30*time.Minute)
	req.GroupID = group
	g, err := f.b.Grant(t.Context(), req)
	if latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Errorf("Grant on unmanaged %s = %+v, %v; want EFORBIDDEN", group, g, err)
	}
	if msg := latch.ErrorMessage(err); !strings.Contains(msg, string(group)) || !strings.Contains(msg, "latch:managed=true") {
		t.Errorf("message %q does not name the group and the tag", msg)
	}
	if rules := env.Ingress(t, group); len(rules) != 0 {
		t.Errorf("%d rules opened in the unmanaged group", len(rules))
	}
	if gs, err := f.store.Grants(t.Context(), latch.GrantFilter{}); err != nil || len(gs) != 0 {
		t.Errorf("store holds %d grants (%v); want none", len(gs), err)
	}
	if audit, _ := f.store.AuditEntries(t.Context(), latch.AuditFilter{}); len(audit) != 0 {
		t.Errorf("audit log has %d entries; want none", len(audit))
	}
}

// A group that does not exist is refused as not found, before anything
// is recorded.
func TestGrantRefusesAGroupThatDoesNotExist(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	req := f.request("203.0.113.7", 30*time.Minute)
	req.GroupID = "sg-0000000000000dead"
	if _, err := f.b.Grant(t.Context(), req); latch.ErrorCode(err) != latch.ENOTFOUND || !strings.Contains(err.Error(), "sg-0000000000000dead") {
		t.Errorf("Grant on a missing group: %v; want ENOTFOUND naming it", err)
	}
	if gs, _ := f.store.Grants(t.Context(), latch.GrantFilter{}); len(gs) != 0 {
		t.Errorf("store holds %d grants; want none", len(gs))
	}
}

// A region with a firewall but no group lookup opens nothing: the check
// fails closed.
func TestGrantWithoutAGroupLookupOpensNothing(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	f.b = broker.New(f.store, []latch.Firewall{env.Firewall(t)}, nil, broker.Options{Clock: f.clock})
	if _, err := f.b.Grant(t.Context(), f.request("203.0.113.7", 30*time.Minute)); err == nil {
		t.Error("Grant without a group lookup succeeded")
	}
	if rules := env.Ingress(t, f.group); len(rules) != 0 {
		t.Errorf("%d rules opened", len(rules))
	}
}
