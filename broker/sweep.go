package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/latchdev/latch"
)

// Swept is one expired rule a sweep found.
type Swept struct {
	Rule      latch.Rule
	ExpiredAt time.Time // zero if the expiry tag was unreadable
	Revoked   bool      // false on a dry run, on error, or if a live grant kept it
	// KeptFor is the live grant the store knows on the rule, if any: the
	// rule's tags were stale and were mended, and it stays open until
	// KeptFor.ExpiresAt.
	KeptFor *latch.Grant
	Err     error
}

// SweepReport says what one sweep of one region found and did.
type SweepReport struct {
	Region string
	Rules  int // latch rules found
	Swept  []Swept
}

// Sweep revokes every rule in the firewalls' regions whose latch:expires-at
// has passed, using AWS alone: it needs no store. A rule whose expiry tag is
// unreadable counts as expired. With dryRun it only reports.
func Sweep(ctx context.Context, fws []latch.Firewall, now time.Time, dryRun bool, log *slog.Logger) ([]SweepReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var reports []SweepReport
	var errs []error
	for _, fw := range fws {
		rules, err := fw.Rules(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: list rules: %w", fw.Region(), err))
			reports = append(reports, SweepReport{Region: fw.Region()})
			continue
		}
		rep, err := sweepRules(fw.Region(), rules, now, func(r latch.Rule, s *Swept) {
			if dryRun {
				return
			}
			if s.Err = fw.Revoke(ctx, r.Opening.GroupID, r.ID); s.Err != nil {
				return
			}
			ruleEvidence(ctx, log, "expired", r, "via", "sweep")
			s.Revoked = true
		})
		reports = append(reports, rep)
		errs = append(errs, err)
	}
	return reports, errors.Join(errs...)
}

// sweepRules calls act on each expired rule of rules, which records what
// it did in s, and reports.
func sweepRules(region string, rules []latch.Rule, now time.Time, act func(r latch.Rule, s *Swept)) (SweepReport, error) {
	rep := SweepReport{Region: region, Rules: len(rules)}
	var errs []error
	for _, r := range rules {
		at, _, perr := r.ExpiresAt()
		if perr == nil && at.After(now) {
			continue
		}
		s := Swept{Rule: r, ExpiredAt: at}
		act(r, &s)
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("revoke %s in %s: %w", r.ID, r.Opening.GroupID, s.Err))
		}
		rep.Swept = append(rep.Swept, s)
	}
	return rep, errors.Join(errs...)
}

// ruleEvidence is the evidence line for a rule ended from its tags alone.
func ruleEvidence(ctx context.Context, log *slog.Logger, msg string, r latch.Rule, attrs ...any) {
	o := r.Opening
	log.InfoContext(ctx, msg, append([]any{
		"grant_id", r.Tags[latch.TagGrantID], "region", o.Region, "group_id", o.GroupID, "rule_id", r.ID,
		"source", o.Source.String(), "protocol", o.Protocol, "ports", o.Ports.String(),
		"requester", r.Tags[latch.TagRequester], "expires_at", r.Tags[latch.TagExpiresAt],
	}, attrs...)...)
}

// Sweep revokes every expired latch rule in every configured region, known
// to the store or not, and records what it did against the grants the store
// knows. It first settles requested grants whose process died before
// recording the outcome. Every region is tried before errors are returned.
func (b *Broker) Sweep(ctx context.Context) error {
	_, err := b.sweepAll(ctx)
	_, sessErr := b.SweepSessions(ctx)
	return errors.Join(err, sessErr)
}

// SweepOnce is one pass of what the revoker daemon does (its Session
// Manager part is SweepSessions), for a one-shot
// sweep with a store (`latch sweep --db`): it sweeps every region as Sweep
// does, reporting each expired rule, then expires every grant the store has
// due, as the daemon's timer would, so that grants whose rules are already
// gone (revoked by a sweep without the store, say) end too. expired counts
// those.
func (b *Broker) SweepOnce(ctx context.Context) (reports []SweepReport, expired int, err error) {
	reports, err = b.sweepAll(ctx)
	expired, dueErr := b.expireDue(ctx)
	return reports, expired, errors.Join(err, dueErr)
}

func (b *Broker) sweepAll(ctx context.Context) ([]SweepReport, error) {
	var reports []SweepReport
	var errs []error
	for _, region := range slices.Sorted(maps.Keys(b.firewalls)) {
		rep, err := b.sweepRegion(ctx, b.firewalls[region])
		reports = append(reports, rep)
		errs = append(errs, err)
	}
	return reports, errors.Join(errs...)
}

// expireDue expires every grant in a configured region that is due now.
func (b *Broker) expireDue(ctx context.Context) (int, error) {
	now := b.now()
	tried := map[latch.GrantID]bool{}
	var errs []error
	expired := 0
	for {
		ids, err := b.store.Due(ctx, now, 100)
		if err != nil {
			return expired, errors.Join(append(errs, fmt.Errorf("list due grants: %w", err))...)
		}
		fresh := 0
		for _, id := range ids {
			if tried[id] {
				continue // a failed attempt not yet recorded as such
			}
			tried[id], fresh = true, fresh+1
			g, err := b.store.Grant(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if _, ok := b.firewalls[g.Region]; !ok {
				continue // another region's revoker's
			}
			if err := b.Expire(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("expire %s: %w", id, err))
				continue
			}
			if g, err := b.store.Grant(ctx, id); err == nil && g.State == latch.StateExpired {
				expired++
			}
		}
		if fresh == 0 {
			return expired, errors.Join(errs...)
		}
	}
}

func (b *Broker) sweepRegion(ctx context.Context, fw latch.Firewall) (rep SweepReport, err error) {
	now := b.now()
	found, revoked := 0, 0
	defer func() { b.opts.Observer.SweepDone(fw.Region(), b.clock.Now().Sub(now), found, revoked, err) }()
	rules, err := fw.Rules(ctx)
	if err != nil {
		return SweepReport{Region: fw.Region()}, fmt.Errorf("sweep %s: list rules: %w", fw.Region(), err)
	}
	found = len(rules)
	settleErr := b.settle(ctx, fw, rules, now)
	rep, sweepErr := sweepRules(fw.Region(), rules, now, func(r latch.Rule, s *Swept) {
		s.Revoked, s.KeptFor, s.Err = b.sweepRule(ctx, fw, r, now)
	})
	for _, s := range rep.Swept {
		if s.Revoked {
			revoked++
		}
	}
	return rep, errors.Join(settleErr, sweepErr)
}

// sweepRule revokes an expired rule and ends the grants on it, unless the
// store knows a live grant on it, in which case its tags were left stale
// (a crash between steps) and are mended instead, and that grant returned.
func (b *Broker) sweepRule(ctx context.Context, fw latch.Firewall, r latch.Rule, now time.Time) (revoked bool, keptFor *latch.Grant, err error) {
	unlock := b.lock(r.Opening)
	defer unlock()
	grants, err := b.store.Grants(ctx, latch.GrantFilter{RuleID: r.ID, States: []latch.GrantState{latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}})
	if err != nil {
		return false, nil, fmt.Errorf("list grants on rule %s: %w", r.ID, err)
	}
	var keeper *latch.Grant
	for i, g := range grants {
		if g.State == latch.StateActive && g.ExpiresAt.After(now) && (keeper == nil || g.ExpiresAt.After(keeper.ExpiresAt)) {
			keeper = &grants[i]
		}
	}
	if keeper != nil {
		b.log.WarnContext(ctx, "rule tagged expired but a live grant holds it; mending its tags", "rule_id", r.ID, "grant_id", keeper.ID)
		if err := fw.Tag(ctx, r.ID, latch.RuleTags(*keeper)); err != nil {
			return false, nil, err
		}
		b.backstop(ctx, r.Opening.Region, r.Opening.GroupID, r.ID, keeper.ExpiresAt)
		return false, keeper, nil
	}
	b.checkpoint("before-revoke")
	if err := fw.Revoke(ctx, r.Opening.GroupID, r.ID); err != nil {
		return false, nil, err
	}
	b.checkpoint("after-revoke")
	b.unbackstop(ctx, r.Opening.Region, r.ID)
	ruleEvidence(ctx, b.log, "expired", r, "via", "sweep")
	if len(grants) == 0 {
		b.audit(ctx, latch.AuditEntry{Actor: Actor, Action: latch.AuditSweptOrphan, Target: string(r.Opening.GroupID),
			GrantID: latch.GrantID(r.Tags[latch.TagGrantID]), Details: map[string]string{
				"region": r.Opening.Region, "rule_id": string(r.ID), "source": r.Opening.Source.String(),
				"protocol": string(r.Opening.Protocol), "ports": r.Opening.Ports.String(),
				"requester": r.Tags[latch.TagRequester], "expires_at": r.Tags[latch.TagExpiresAt]}})
	}
	for _, g := range grants {
		if g.State == latch.StateActive {
			g.State, g.EndAs = latch.StateRevoking, latch.StateExpired
			if g, err = b.store.UpdateGrant(ctx, g, "expired"); err != nil {
				continue // the revoker will finish it: the rule is gone, so its revoke succeeds
			}
		}
		g.State, g.EndedAt, g.LastError, g.NextAttempt = g.EndAs, now, "", time.Time{}
		ended, err := b.store.UpdateGrant(ctx, g, "rule revoked by sweep")
		if err != nil {
			b.log.WarnContext(ctx, "record swept grant", "grant_id", g.ID, "err", err)
			continue
		}
		b.ended(ctx, ended, Actor, "rule revoked by sweep", now)
	}
	return true, nil, nil
}

// settle decides requested grants whose process has had SettleTime to
// finish and has not: if their rule is in AWS they are active (and revoked
// in turn if expired); if not, they never opened.
func (b *Broker) settle(ctx context.Context, fw latch.Firewall, rules []latch.Rule, now time.Time) error {
	stuck, err := b.store.Grants(ctx, latch.GrantFilter{States: []latch.GrantState{latch.StateRequested}})
	if err != nil {
		return fmt.Errorf("list requested grants: %w", err)
	}
	var errs []error
	for _, g := range stuck {
		if g.Region != fw.Region() || g.CreatedAt.Add(b.opts.SettleTime).After(now) {
			continue
		}
		errs = append(errs, b.settleOne(ctx, fw, g, rules, now))
	}
	return errors.Join(errs...)
}

func (b *Broker) settleOne(ctx context.Context, fw latch.Firewall, g latch.Grant, rules []latch.Rule, now time.Time) error {
	unlock := b.lock(g.Opening())
	defer unlock()
	for _, r := range rules {
		if r.Opening != g.Opening() {
			continue
		}
		if at, _, err := r.ExpiresAt(); err != nil || at.Before(g.ExpiresAt) {
			owner, err := b.latestSharer(ctx, g)
			if err != nil {
				return err
			}
			if err := fw.Tag(ctx, r.ID, latch.RuleTags(owner)); err != nil {
				return fmt.Errorf("settle %s: tag rule %s: %w", g.ID, r.ID, err)
			}
			b.backstop(ctx, g.Region, g.GroupID, r.ID, owner.ExpiresAt)
		}
		g.State, g.RuleID = latch.StateActive, r.ID
		_, err := b.store.UpdateGrant(ctx, g, "settled: rule "+string(r.ID)+" found in AWS")
		return err
	}
	g.State, g.EndedAt, g.LastError = latch.StateFailed, now, "the process opening it stopped before the rule was made"
	_, err := b.store.UpdateGrant(ctx, g, "settled: no rule in AWS")
	return err
}
