package ec2sim_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

// Many clients race to open and close the same few rules. Whatever the
// interleaving, each rule exists at most once, every call gets either
// success or the one error code that explains the loss, and the final
// state is what the last operations left.
func TestConcurrent_AuthorizeAndRevoke(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	const workers, rounds, cidrs = 8, 20, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*2)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				cidr := fmt.Sprintf("198.51.100.%d/32", (w+i)%cidrs)
				_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
					GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh(cidr)},
					TagSpecifications: tagSpec("worker", fmt.Sprint(w)),
				})
				if err != nil && errorCode(err) != "InvalidPermission.Duplicate" {
					errs <- fmt.Errorf("authorize %s: %w", cidr, err)
				}
				_, err = c.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{
					GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh(cidr)},
				})
				if err != nil && errorCode(err) != "InvalidPermission.NotFound" {
					errs <- fmt.Errorf("revoke %s: %w", cidr, err)
				}
				if _, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{
					Filters: []types.Filter{filter("group-id", web)},
				}); err != nil {
					errs <- fmt.Errorf("describe: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	seen := map[string]bool{}
	for _, r := range sim.Rules("us-east-1", web) {
		if seen[r.CIDR] {
			t.Errorf("rule for %s twice", r.CIDR)
		}
		seen[r.CIDR] = true
	}
	if n := sim.Calls(authorize); n != workers*rounds {
		t.Errorf("%d authorize calls, want %d", n, workers*rounds)
	}

	// Every rule left can be revoked by ID, and then nothing is left.
	for _, r := range sim.Rules("us-east-1", web) {
		if _, err := c.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{
			GroupId: aws.String(web), SecurityGroupRuleIds: []string{r.ID},
		}); err != nil {
			t.Errorf("revoke %s: %v", r.ID, err)
		}
	}
	if left := sim.Rules("us-east-1", web); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}
