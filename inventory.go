package latch

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
)

// Group is a security group as latch needs to know it.
type Group struct {
	ID   GroupID
	Name string
	Tags map[string]string
}

// Managed reports whether latch may open the group.
func (g Group) Managed() bool { return g.Tags[TagManaged] == "true" }

// Instance is an EC2 instance and the security groups attached to it.
type Instance struct {
	ID     InstanceID
	Name   string // its Name tag
	Tags   map[string]string
	Groups []Group
	State  string // pending, running, stopping, stopped, …
	// PrivateIP and PublicIP are the primary interface's addresses; either
	// may be the zero Addr (no public address, or a stopped instance).
	PrivateIP netip.Addr
	PublicIP  netip.Addr
}

// Inventory looks up targets in one region.
type Inventory interface {
	// Instance returns an instance with its groups. Returns ENOTFOUND.
	Instance(ctx context.Context, id InstanceID) (Instance, error)
	// Group returns a security group. Returns ENOTFOUND.
	Group(ctx context.Context, id GroupID) (Group, error)
	// InstancesNamed returns the instances whose Name tag is exactly name,
	// in any state but terminated; none is not an error.
	InstancesNamed(ctx context.Context, name string) ([]Instance, error)
}

// ManagedGroups returns the groups on in that latch may open, by ID, so
// that every reader tries them in the same order. An instance may carry
// several, up to its network interface's limit (5 by default): when one
// has no room for another rule, latch opens the next ([ErrGroupFull]).
func (in Instance) ManagedGroups() []Group {
	var found []Group
	for _, g := range in.Groups {
		if g.Managed() {
			found = append(found, g)
		}
	}
	slices.SortFunc(found, func(a, b Group) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return found
}

// ManagedGroup returns the group on in that latch opens first: the first
// of [Instance.ManagedGroups]. It is an error for an instance to have
// none.
func (in Instance) ManagedGroup() (Group, error) {
	found := in.ManagedGroups()
	if len(found) == 0 {
		return Group{}, Errorf(ECONFLICT, "instance %s has no security group tagged %s=true; attach one (with no inbound rules) for latch to open", in.ID, TagManaged)
	}
	return found[0], nil
}

// ErrGroupFull is in the chain of an error that says a security group has
// no room for another inbound rule (EC2's quota L-0EA8095F, 60 per address
// family by default). Firewall.Authorize returns it with ECONFLICT.
var ErrGroupFull = errors.New("security group rule quota reached")

// DefaultRuleQuota is EC2's default quota of inbound rules per security
// group and address family (L-0EA8095F).
const DefaultRuleQuota = 60
