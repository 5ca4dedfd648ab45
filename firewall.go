package latch

import (
	"context"
	"time"
)

// Rule is an ingress rule as found in the cloud.
type Rule struct {
	ID      RuleID
	Opening Opening
	Tags    map[string]string
}

// ExpiresAt reads the rule's latch:expires-at tag. ok is false when the tag
// is absent; err is set when it is present but unreadable.
func (r Rule) ExpiresAt() (at time.Time, ok bool, err error) {
	v, ok := r.Tags[TagExpiresAt]
	if !ok {
		return time.Time{}, false, nil
	}
	at, err = ParseExpiry(v)
	return at, true, err
}

// MaxRevokeBatch is the most rules one RevokeMany takes. EC2's API reference
// documents no limit on how many SecurityGroupRuleIds one
// RevokeSecurityGroupIngress names; 200 keeps each request small (a few KB)
// and within the number of values latch puts in one Describe filter, which
// RevokeMany uses to learn which rules of a failed batch are gone. 10,000
// rules over 200 groups then take 200 calls, one per group.
const MaxRevokeBatch = 200

// Firewall opens and closes ingress rules in one region.
type Firewall interface {
	// Region is the region this firewall acts in.
	Region() string
	// Authorize opens o with tags. If an identical rule already exists it is
	// left as it is and returned with created false. Returns ENOTFOUND if the
	// group does not exist, ECONFLICT if its rule quota is full.
	Authorize(ctx context.Context, o Opening, tags map[string]string) (r Rule, created bool, err error)
	// Tag sets tags on a rule, replacing values of the same keys. Returns
	// ENOTFOUND if the rule does not exist.
	Tag(ctx context.Context, id RuleID, tags map[string]string) error
	// Revoke removes a rule. A rule that does not exist is not an error.
	Revoke(ctx context.Context, group GroupID, id RuleID) error
	// RevokeMany removes rules of one group, at most MaxRevokeBatch of
	// them, in as few calls as it can (one, when all of them exist). On a
	// nil error every rule is gone; gone names those that were already gone
	// (or never were in group), which count as revoked too. On an error
	// some of them may have been revoked: callers retry the whole batch,
	// which is idempotent. Returns EINVALID for more than MaxRevokeBatch
	// rules.
	RevokeMany(ctx context.Context, group GroupID, ids []RuleID) (gone []RuleID, err error)
	// Rules lists every rule tagged latch:expires-at in the region.
	Rules(ctx context.Context) ([]Rule, error)
}
