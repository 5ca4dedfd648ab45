package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
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

// DescribeLagAllowance is how long after the store recorded a rule revoked
// a sweep believes the store over a listing that still shows the rule:
// EC2's Describe calls lag its mutations by seconds, rarely more.
const DescribeLagAllowance = 2 * time.Minute

// SweepConcurrency is how many batches of rules a sweep revokes at once, in
// one region: each is one RevokeSecurityGroupIngress of up to
// latch.MaxRevokeBatch rules of one group, so a burst of 10,000 rules over
// 200 groups takes 200 calls, 4 in flight, well inside EC2's throttle for
// RevokeSecurityGroupIngress (its lowest bucket).
const SweepConcurrency = 4

// Sweep revokes every rule in the firewalls' regions whose latch:expires-at
// has passed, using AWS alone: it needs no store. A rule whose expiry tag is
// unreadable counts as expired. It lists each region's rules once and
// revokes the expired ones in per-group batches (see SweepConcurrency). With
// dryRun it only reports.
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
		rep, err := sweepRules(fw.Region(), rules, now, func(group latch.GroupID, batch []*Swept) {
			if dryRun {
				return
			}
			_, err := fw.RevokeMany(ctx, group, batchIDs(batch))
			for _, s := range batch {
				if s.Err = err; err != nil {
					continue
				}
				ruleEvidence(ctx, log, "expired", s.Rule, "via", "sweep")
				s.Revoked = true
			}
		})
		reports = append(reports, rep)
		errs = append(errs, err)
	}
	return reports, errors.Join(errs...)
}

// sweepRules reports the expired rules of rules, in their order, and calls
// act on them in batches: the expired rules of one group, at most
// latch.MaxRevokeBatch of them, SweepConcurrency batches at once. act
// records what it did in the batch's entries, and only there.
func sweepRules(region string, rules []latch.Rule, now time.Time, act func(group latch.GroupID, batch []*Swept)) (SweepReport, error) {
	rep := SweepReport{Region: region, Rules: len(rules)}
	for _, r := range rules {
		at, _, perr := r.ExpiresAt()
		if perr == nil && at.After(now) {
			continue
		}
		rep.Swept = append(rep.Swept, Swept{Rule: r, ExpiredAt: at})
	}
	sem := make(chan struct{}, SweepConcurrency)
	var wg sync.WaitGroup
	for _, batch := range batches(rep.Swept) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			act(batch[0].Rule.Opening.GroupID, batch)
		})
	}
	wg.Wait()
	var errs []error
	for _, s := range rep.Swept {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("revoke %s in %s: %w", s.Rule.ID, s.Rule.Opening.GroupID, s.Err))
		}
	}
	return rep, errors.Join(errs...)
}

// batches splits swept by group, in the order groups first appear, into
// batches of at most latch.MaxRevokeBatch.
func batches(swept []Swept) [][]*Swept {
	var order []latch.GroupID
	byGroup := map[latch.GroupID][]*Swept{}
	for i := range swept {
		g := swept[i].Rule.Opening.GroupID
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], &swept[i])
	}
	var out [][]*Swept
	for _, g := range order {
		out = append(out, slices.Collect(slices.Chunk(byGroup[g], latch.MaxRevokeBatch))...)
	}
	return out
}

func batchIDs(batch []*Swept) []latch.RuleID {
	ids := make([]latch.RuleID, len(batch))
	for i, s := range batch {
		ids[i] = s.Rule.ID
	}
	return ids
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
	if o, ok := b.opts.Observer.(GroupRulesObserver); ok {
		perGroup := map[latch.GroupID]int{}
		for _, r := range rules {
			perGroup[r.Opening.GroupID]++
		}
		o.GroupRules(fw.Region(), perGroup)
	}
	settleErr := b.settle(ctx, fw, rules, now)
	rep, sweepErr := sweepRules(fw.Region(), rules, now, func(group latch.GroupID, batch []*Swept) {
		b.sweepBatch(ctx, fw, group, batch, now)
	})
	for _, s := range rep.Swept {
		if s.Revoked {
			revoked++
		}
	}
	return rep, errors.Join(settleErr, sweepErr)
}

// sweepBatch revokes a batch of expired rules of one group with one
// RevokeMany and ends the grants on them, except rules on which the store
// knows a live grant: their tags were left stale (a crash between steps) and
// are mended instead, and that grant reported as KeptFor. It holds the
// locks of the batch's openings throughout, in lockAll's order: an expiry
// batch (ExpireMany) may hold some of the same openings at the same time.
func (b *Broker) sweepBatch(ctx context.Context, fw latch.Firewall, group latch.GroupID, batch []*Swept, now time.Time) {
	var openings []latch.Opening
	for _, s := range batch {
		openings = append(openings, s.Rule.Opening)
	}
	defer b.lockAll(openings)()
	var doomed []*Swept
	// One query for the batch, not one per rule: the grants the store has
	// open on its rules, and those it ended, each list newest first.
	gs, err := b.store.Grants(ctx, latch.GrantFilter{RuleIDs: batchIDs(batch), States: []latch.GrantState{
		latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed, latch.StateExpired, latch.StateRevoked,
	}})
	if err != nil {
		for _, s := range batch {
			s.Err = fmt.Errorf("list grants on the rules of %s: %w", group, err)
		}
		return
	}
	var open, ended []latch.Grant
	for _, g := range gs {
		if g.State.Open() {
			open = append(open, g)
		} else {
			ended = append(ended, g)
		}
	}
	openOn := map[latch.RuleID][]latch.Grant{}
	for _, g := range open {
		openOn[g.RuleID] = append(openOn[g.RuleID], g)
	}
	revokedLately := map[latch.RuleID]bool{}
	for _, g := range ended {
		if !g.EndedAt.Before(now.Add(-DescribeLagAllowance)) {
			revokedLately[g.RuleID] = true
		}
	}
	keepers := latestLive(open, now, nil)
	grantsOn := make(map[latch.RuleID][]latch.Grant, len(batch))
	for _, s := range batch {
		r := s.Rule
		grants := openOn[r.ID]
		if len(grants) == 0 && revokedLately[r.ID] {
			// Revoked moments ago by the store's account: a listing that
			// still shows it lags (EC2 is eventually consistent). Revoking
			// it again would cost a call per rule (the batch's NotFound
			// leaves Describe, lagging too, to say which are gone) and
			// record a false orphan; the next sweep, past the lag, revokes
			// it if it is really there.
			continue
		}
		keeper, ok := keepers[r.ID]
		if !ok {
			grantsOn[r.ID] = grants
			doomed = append(doomed, s)
			continue
		}
		b.log.WarnContext(ctx, "rule tagged expired but a live grant holds it; mending its tags", "rule_id", r.ID, "grant_id", keeper.ID)
		if s.Err = fw.Tag(ctx, r.ID, latch.RuleTags(keeper)); s.Err != nil {
			continue
		}
		b.backstop(ctx, r.Opening.Region, r.Opening.GroupID, r.ID, keeper.ExpiresAt)
		s.KeptFor = &keeper
	}
	if len(doomed) == 0 {
		return
	}
	b.checkpoint("before-revoke")
	if _, err := fw.RevokeMany(ctx, group, batchIDs(doomed)); err != nil {
		for _, s := range doomed {
			s.Err = err
		}
		return
	}
	b.checkpoint("after-revoke")
	for _, s := range doomed {
		b.endSwept(ctx, s.Rule, grantsOn[s.Rule.ID], now)
		s.Revoked = true
	}
}

// endSwept records that the sweep revoked r: its backstop, evidence line,
// an orphan's audit entry, and the end of the grants on it.
func (b *Broker) endSwept(ctx context.Context, r latch.Rule, grants []latch.Grant, now time.Time) {
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
		var err error
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
