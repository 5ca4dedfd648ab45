package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// ExpireManyLoad is the most grants ExpireMany reads in one query; it
// batches the revokes over all it reads.
const ExpireManyLoad = 2000

// ExpireMany expires the due grants among ids, as Expire does each, but in
// batches: the network grants of one region and group whose rules number
// at most latch.MaxRevokeBatch are recorded revoking in one store
// transaction, revoked with one RevokeMany (a rule several of them share
// once), and recorded ended, with their audit entries, in one more.
// SweepConcurrency batches run at once. A grant whose shared rule a live
// grant outside the batch still holds hands it on, as Expire does. Grants
// that are not due or have ended are left alone; those with no rule
// recorded, Session Manager grants and grants of regions this broker does
// not serve go through Expire one by one. A failed batch records a failed
// attempt, with its backoff, on each of its grants. The error joins every
// failure; the grants it names are retried when next due.
func (b *Broker) ExpireMany(ctx context.Context, ids []latch.GrantID) error {
	// Read in chunks, but batch over all of them: 10,000 grants over 200
	// groups are 200 Revoke calls, where batching each chunk of 2,000 on
	// its own made 1,000.
	var gs []latch.Grant
	for chunk := range slices.Chunk(ids, ExpireManyLoad) {
		some, err := b.store.Grants(ctx, latch.GrantFilter{IDs: chunk})
		if err != nil {
			return fmt.Errorf("load %d due grants: %w", len(chunk), err)
		}
		gs = append(gs, some...)
	}
	now := b.now()
	type key struct {
		region string
		group  latch.GroupID
	}
	byGroup := map[key]map[latch.RuleID][]latch.Grant{}
	var single []latch.GrantID
	for _, g := range gs {
		switch {
		case !g.State.Open() || !b.due(g, now):
			continue
		case g.Access == latch.AccessSSM || g.RuleID == "" || b.firewalls[g.Region] == nil:
			single = append(single, g.ID)
			continue
		}
		k := key{g.Region, g.GroupID}
		if byGroup[k] == nil {
			byGroup[k] = map[latch.RuleID][]latch.Grant{}
		}
		byGroup[k][g.RuleID] = append(byGroup[k][g.RuleID], g)
	}

	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	sem := make(chan struct{}, SweepConcurrency)
	var wg sync.WaitGroup
	run := func(fn func() error) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fail(fn())
		})
	}
	keys := slices.SortedFunc(maps.Keys(byGroup), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.region, b.region), cmp.Compare(a.group, b.group))
	})
	for _, k := range keys {
		rules := slices.Sorted(maps.Keys(byGroup[k]))
		for chunk := range slices.Chunk(rules, latch.MaxRevokeBatch) {
			var batch []latch.Grant
			for _, r := range chunk {
				batch = append(batch, byGroup[k][r]...)
			}
			run(func() error { return b.expireBatch(ctx, k.region, k.group, batch) })
		}
	}
	for _, id := range single {
		run(func() error { return b.Expire(ctx, id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// expireBatch ends the due ones of batch, grants as ExpireMany loaded them,
// all in one region and group and on at most latch.MaxRevokeBatch rules. It
// holds the locks of their openings throughout, taken in one order so that
// batches cannot deadlock, and so decides which rules are shared and acts on
// them as close() does for one grant.
func (b *Broker) expireBatch(ctx context.Context, region string, group latch.GroupID, batch []latch.Grant) error {
	fw := b.firewalls[region]
	ids := make([]latch.GrantID, len(batch))
	openings := make([]latch.Opening, len(batch))
	for i, g := range batch {
		ids[i], openings[i] = g.ID, g.Opening()
	}
	defer b.lockAll(openings)()
	// They may have moved while we waited for the locks.
	gs, err := b.store.Grants(ctx, latch.GrantFilter{IDs: ids})
	if err != nil {
		return fmt.Errorf("load grants of %s: %w", group, err)
	}
	now := b.now()
	var ending []latch.Grant
	var mark []latch.GrantChange
	for _, g := range gs {
		switch {
		case !g.State.Open() || !b.due(g, now) || g.RuleID == "" || g.Access == latch.AccessSSM:
			continue // ended or moved meanwhile; one that lost its rule is Expire's when next due
		case g.State.Ending():
			ending = append(ending, g)
		default:
			g.State, g.EndAs, g.NextAttempt = latch.StateRevoking, latch.StateExpired, now
			mark = append(mark, latch.GrantChange{Grant: g, Note: "expired"})
		}
	}
	// Intent before effect: revoking is committed before AWS is called.
	marked, err := b.store.UpdateGrants(ctx, mark, b.opts.Sign)
	if marked == nil {
		return fmt.Errorf("record %d grants of %s revoking: %w", len(mark), group, err)
	}
	var errs []error
	errs = append(errs, err) // stale ones: changed elsewhere, and left to that change
	for _, c := range marked {
		if c.Grant.ID != "" {
			ending = append(ending, c.Grant)
		}
	}
	if len(ending) == 0 {
		return errors.Join(errs...)
	}

	keepers, err := b.keepers(ctx, ending, now)
	if err != nil {
		return errors.Join(append(errs, b.batchFailed(ctx, ending, now, err))...)
	}
	var doomed []latch.RuleID
	outcome := map[latch.RuleID]error{}
	notes := map[latch.RuleID]string{}
	for _, g := range ending {
		r := g.RuleID
		if _, seen := notes[r]; seen {
			continue // a rule shared by grants ending together: acted on once
		}
		notes[r] = "rule revoked"
		keeper, ok := keepers[r]
		if !ok {
			doomed = append(doomed, r)
			continue
		}
		notes[r], _, outcome[r] = b.handOver(ctx, fw, g, keeper)
	}
	if len(doomed) > 0 {
		b.checkpoint("before-revoke")
		if _, err := fw.RevokeMany(ctx, group, doomed); err != nil {
			for _, r := range doomed {
				outcome[r] = err
			}
		} else {
			b.checkpoint("after-revoke")
			for _, r := range doomed {
				b.unbackstop(ctx, region, r)
			}
		}
	}

	var changes []latch.GrantChange
	for _, g := range ending {
		if err := outcome[g.RuleID]; err != nil {
			changes = append(changes, b.failedChange(ctx, g, now, err))
			errs = append(errs, failedErr(g, err))
			continue
		}
		changes = append(changes, b.endChange(g, "", notes[g.RuleID], now))
	}
	written, err := b.store.UpdateGrants(ctx, changes, b.opts.Sign)
	if written == nil {
		// Nothing recorded: the grants stay ending and due, and are tried
		// again, which finds their rules gone.
		return errors.Join(append(errs, fmt.Errorf("record the end of %d grants of %s: %w", len(changes), group, err))...)
	}
	errs = append(errs, err)
	for _, c := range written {
		switch {
		case c.Grant.ID == "":
		case c.Grant.State.Open(): // a failed attempt, logged by failedChange
			LogAuditHead(ctx, b.log, *c.Audit, b.opts.Sign)
		default:
			b.recordEnded(ctx, c, now)
		}
	}
	return errors.Join(errs...)
}

// keepers returns, for each rule of ending that a live grant not ending
// still holds, the latest-expiring such grant: the one the rule is handed
// to instead of being revoked.
func (b *Broker) keepers(ctx context.Context, ending []latch.Grant, now time.Time) (map[latch.RuleID]latch.Grant, error) {
	rules := make([]latch.RuleID, 0, len(ending))
	isEnding := make(map[latch.GrantID]bool, len(ending))
	for _, g := range ending {
		rules = append(rules, g.RuleID)
		isEnding[g.ID] = true
	}
	live, err := b.store.Grants(ctx, latch.GrantFilter{RuleIDs: rules, States: []latch.GrantState{latch.StateActive}})
	if err != nil {
		return nil, fmt.Errorf("list grants sharing %d rules: %w", len(rules), err)
	}
	return latestLive(live, now, isEnding), nil
}

// latestLive returns, for each rule of grants, the latest-expiring of its
// grants that is active, unexpired at now and not in skip: the grant that
// keeps the rule open.
func latestLive(grants []latch.Grant, now time.Time, skip map[latch.GrantID]bool) map[latch.RuleID]latch.Grant {
	keepers := map[latch.RuleID]latch.Grant{}
	for _, g := range grants {
		k, ok := keepers[g.RuleID]
		if g.State == latch.StateActive && !skip[g.ID] && g.ExpiresAt.After(now) && (!ok || g.ExpiresAt.After(k.ExpiresAt)) {
			keepers[g.RuleID] = g
		}
	}
	return keepers
}

// handOver retags g's rule for keeper, which still holds it, and moves its
// backstop: the rule stays open until keeper's expiry. It returns the
// history note, whether the rule stays (false if it was gone already), and
// the error that leaves g ending.
func (b *Broker) handOver(ctx context.Context, fw latch.Firewall, g latch.Grant, keeper latch.Grant) (note string, stays bool, err error) {
	stays = true
	switch err := fw.Tag(ctx, g.RuleID, latch.RuleTags(keeper)); {
	case latch.ErrorCode(err) == latch.ENOTFOUND:
		stays = false
	case err != nil:
		return "", false, fmt.Errorf("hand rule %s to grant %s: %w", g.RuleID, keeper.ID, err)
	}
	b.backstop(ctx, g.Region, g.GroupID, g.RuleID, keeper.ExpiresAt)
	return fmt.Sprintf("%s %s until %s", NoteKept, keeper.ID, latch.FormatExpiry(keeper.ExpiresAt)), stays, nil
}

// batchFailed records a failed attempt on each of gs, in one transaction.
func (b *Broker) batchFailed(ctx context.Context, gs []latch.Grant, now time.Time, cause error) error {
	changes := make([]latch.GrantChange, len(gs))
	for i, g := range gs {
		changes[i] = b.failedChange(ctx, g, now, cause)
	}
	written, err := b.store.UpdateGrants(ctx, changes, b.opts.Sign)
	for _, c := range written {
		if c.Audit != nil {
			LogAuditHead(ctx, b.log, *c.Audit, b.opts.Sign)
		}
	}
	if err != nil {
		b.log.ErrorContext(ctx, "record failed revokes", "grants", len(gs), "err", err)
	}
	return fmt.Errorf("revoke %d grants: %w", len(gs), cause)
}
