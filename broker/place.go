package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// placed is where open put a grant's rule. unlock releases the lock of the
// opening it ended in, which the caller holds until the outcome is
// recorded.
type placed struct {
	rule   latch.Rule
	until  time.Time
	moved  bool   // the rule or its expiry changed: move the backstop
	note   string // "sg-A is full (60 rules); opened in sg-B", or ""
	unlock func()
}

// PlacementObserver is told when a group had no room for a grant's rule:
// placedIn is the group it opened in instead, "" if none had room. An
// Observer that implements it gets these calls too.
type PlacementObserver interface {
	GroupFull(region string, full, placedIn latch.GroupID)
}

// GroupRulesObserver is told, after each sweep lists a region's rules, how
// many latch rules each group holds, so that a group nearing EC2's rule
// quota shows before it is full. An Observer that implements it gets
// these calls too.
type GroupRulesObserver interface {
	GroupRules(region string, rules map[latch.GroupID]int)
}

// place opens g's rule under its opening's lock. When g's group is full and
// g is for an instance, it moves g to the instance's next managed group,
// recording the move before it authorizes there (so a sweep settling a
// crashed grant looks in the right group), and tries again.
func (b *Broker) place(ctx context.Context, fw latch.Firewall, g *latch.Grant, instance latch.InstanceID, allow func(latch.GroupID) error) (placed, error) {
	tried := map[latch.GroupID]bool{}
	var full []string // each group found full, with its count
	for {
		unlock := b.lock(g.Opening())
		b.checkpoint("before-authorize")
		rule, until, moved, err := b.open(ctx, fw, *g)
		p := placed{rule: rule, until: until, moved: moved, unlock: unlock}
		if len(full) > 0 {
			p.note = fmt.Sprintf("%s; opened in %s", strings.Join(full, "; "), g.GroupID)
		}
		if !errors.Is(err, latch.ErrGroupFull) {
			return p, err
		}
		unlock()
		p.unlock = func() {}
		tried[g.GroupID] = true
		full = append(full, fmt.Sprintf("%s is full (%s)", g.GroupID, b.ruleCount(ctx, fw, *g)))
		next, refused, err := b.nextGroup(ctx, g.Region, instance, tried, allow)
		full = append(full, refused...)
		if err != nil {
			return p, fmt.Errorf("find another managed group of %s: %w", instance, err)
		}
		b.observeFull(g.Region, g.GroupID, next)
		if next == "" {
			return p, fullError(*g, instance, full, len(tried))
		}
		b.log.InfoContext(ctx, "security group full; opening the grant in another of the instance's managed groups",
			"grant_id", g.ID, "full", g.GroupID, "group_id", next, "instance_id", instance)
		moving := *g
		moving.GroupID = next
		ug, err := b.store.UpdateGrant(ctx, moving, fmt.Sprintf("%s; opening in %s", full[len(full)-1], next))
		if err != nil {
			return p, fmt.Errorf("record the move to %s: %w", next, err)
		}
		*g = ug
	}
}

// nextGroup returns instance's first managed group not yet tried, read
// afresh and still tagged latch:managed=true; "" when there is none (or no
// instance).
func (b *Broker) nextGroup(ctx context.Context, region string, instance latch.InstanceID, tried map[latch.GroupID]bool, allow func(latch.GroupID) error) (next latch.GroupID, refused []string, err error) {
	if instance == "" {
		return "", nil, nil
	}
	inv, ok := b.groups[region].(instanceLookup)
	if !ok {
		return "", nil, nil
	}
	in, err := inv.Instance(ctx, instance)
	if err != nil {
		return "", nil, err
	}
	for _, cand := range in.ManagedGroups() {
		if tried[cand.ID] {
			continue
		}
		tried[cand.ID] = true // asked once, whatever the answer
		if allow != nil {
			if err := allow(cand.ID); err != nil {
				refused = append(refused, fmt.Sprintf("%s is not for this request (%s)", cand.ID, latch.ErrorMessage(err)))
				continue
			}
		}
		// The instance's read says managed; the group's own read is the one
		// every grant passes (checkManaged), so a tag removed in between
		// still stops it.
		if err := b.checkManaged(ctx, region, cand.ID); err != nil {
			b.log.WarnContext(ctx, "skipping a group that is no longer managed", "group_id", cand.ID, "instance_id", instance, "err", err)
			continue
		}
		return cand.ID, refused, nil
	}
	return "", refused, nil
}

// instanceLookup is the part of [latch.Inventory] that finds an instance's
// groups; a GroupLookup without it opens only the group asked for.
type instanceLookup interface {
	Instance(ctx context.Context, id latch.InstanceID) (latch.Instance, error)
}

// groupRules is what a firewall may offer to count a group's rules
// (aws.Firewall does); without it the count is not reported.
type groupRules interface {
	GroupRules(ctx context.Context, group latch.GroupID) ([]latch.Rule, error)
}

// ruleCount says how many inbound rules of g's address family its group
// holds, for a message: "60 rules", or "its quota of inbound rules" when
// the firewall cannot count.
func (b *Broker) ruleCount(ctx context.Context, fw latch.Firewall, g latch.Grant) string {
	const unknown = "its quota of inbound rules"
	gr, ok := fw.(groupRules)
	if !ok {
		return unknown
	}
	rules, err := gr.GroupRules(ctx, g.GroupID)
	if err != nil {
		return unknown
	}
	n := 0
	for _, r := range rules {
		if r.Opening.Source.Addr().Is4() == g.Source.Addr().Is4() {
			n++
		}
	}
	return fmt.Sprintf("%d rules", n)
}

// fullError is the refusal when no group had room: it names the groups,
// the quota, and what to do.
func fullError(g latch.Grant, instance latch.InstanceID, full []string, tried int) error {
	const quota = "EC2's quota of inbound rules per security group and address family (L-0EA8095F) is 60 by default"
	switch {
	case instance == "":
		return latch.Errorf(latch.ECONFLICT, "security group %s; %s: end other grants in it, raise the quota, or ask for the instance instead of the group, so that latch can open another of its managed groups",
			full[0], quota)
	case tried == 1:
		return latch.Errorf(latch.ECONFLICT, "security group %s; %s; it is the only security group of instance %s tagged %s=true: attach another security group tagged %s=true to the instance (latch opens the next when one is full), end other grants, or raise the quota",
			full[0], quota, instance, latch.TagManaged, latch.TagManaged)
	}
	return latch.Errorf(latch.ECONFLICT, "every security group of instance %s tagged %s=true is full: %s; %s: attach another security group tagged %s=true (up to 5 per network interface), end other grants, or raise the quota",
		instance, latch.TagManaged, strings.Join(full, ", "), quota, latch.TagManaged)
}

func (b *Broker) observeFull(region string, full, placedIn latch.GroupID) {
	if o, ok := b.opts.Observer.(PlacementObserver); ok {
		o.GroupFull(region, full, placedIn)
	}
}
