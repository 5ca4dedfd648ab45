package latch

import (
	"context"
	"net/netip"
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

// ManagedGroup returns the one group on in that latch may open. It is an
// error for an instance to have none, or several: latch never guesses
// which group to open.
func (in Instance) ManagedGroup() (Group, error) {
	var found []Group
	for _, g := range in.Groups {
		if g.Managed() {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Group{}, Errorf(ECONFLICT, "instance %s has no security group tagged %s=true; attach one (with no inbound rules) for latch to open", in.ID, TagManaged)
	default:
		return Group{}, Errorf(ECONFLICT, "instance %s has %d security groups tagged %s=true (%s, %s, …); latch opens exactly one, so keep one", in.ID, len(found), TagManaged, found[0].ID, found[1].ID)
	}
}
