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
	// Rules lists every rule tagged latch:expires-at in the region.
	Rules(ctx context.Context) ([]Rule, error)
}
