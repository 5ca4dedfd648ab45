package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/revoker"
)

// Phases use distinct first octets, so a phase's leftovers never share a
// rule with the next phase's grants.
const (
	phaseRaw = iota
	phaseBurst
	phaseSweep
	phaseSpread
	phaseShared
)

// rawAuthorize times the baseline: what one grant's rule costs with no
// broker and no store, the SDK's AuthorizeSecurityGroupIngress with the
// tags a grant's rule carries, on the same simulator. The rules fill
// groups of their own as densely as the grants fill theirs, and are
// revoked after; their heap is the simulator's share of an active grant.
func (r *run) rawAuthorize(ctx context.Context) error {
	n := r.opts.RawAuthorizes
	perGroup := (r.opts.Grants + r.opts.Groups - 1) / r.opts.Groups
	var groups []latch.GroupID
	for i := range (n + perGroup - 1) / perGroup {
		g, err := r.createGroup(ctx, fmt.Sprintf("latch-bench-raw-%d", i), nil)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	heap0 := heapAlloc()
	ids := map[latch.GroupID][]latch.RuleID{}
	start := time.Now()
	for i := range n {
		group := groups[i/perGroup]
		tags := latch.RuleTags(latch.Grant{ID: latch.NewGrantID(), ExpiresAt: r.clock.Now().Add(duration), Requester: "bench@latch"})
		var ts []types.Tag
		for k, v := range tags {
			ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out, err := r.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(string(group)),
			IpPermissions: []types.IpPermission{{
				IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
				IpRanges: []types.IpRange{{CidrIp: aws.String(source(phaseRaw, i).String()), Description: aws.String("latch " + tags[latch.TagGrantID])}},
			}},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroupRule, Tags: ts}},
		})
		if err != nil {
			return fmt.Errorf("raw authorize %d: %w", i, err)
		}
		for _, rule := range out.SecurityGroupRules {
			ids[group] = append(ids[group], latch.RuleID(aws.ToString(rule.SecurityGroupRuleId)))
		}
		r.opts.Progress("raw authorize", i+1, n)
	}
	r.rep.RawAuthorize = time.Since(start).Seconds() / float64(n)
	r.rep.SimHeapPerRule = float64(int64(heapAlloc())-int64(heap0)) / float64(n)
	for group, rules := range ids {
		if _, err := r.fw.RevokeMany(ctx, group, rules); err != nil {
			return fmt.Errorf("revoke the raw rules: %w", err)
		}
	}
	return nil
}

// burst opens N unshared grants one after another (grants/s, time per
// grant, memory with N active), then moves the clock once past their
// common expiry and measures each grant's lag to its end under the real
// revoker.
func (r *run) burst(ctx context.Context) error {
	n := r.opts.Grants
	heap0, rss0 := heapAlloc(), rssBytes()
	calls0, err := r.calls(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := range n {
		if _, err := r.broker.Grant(ctx, r.request(phaseBurst, i, duration)); err != nil {
			return fmt.Errorf("grant %d of %d: %w", i+1, n, err)
		}
		r.opts.Progress("open", i+1, n)
	}
	open := time.Since(start)
	r.rep.OpenSeconds = open.Seconds()
	r.rep.GrantsPerSecond = float64(n) / open.Seconds()
	r.rep.GrantSeconds = open.Seconds() / float64(n)
	if r.rep.RawAuthorize > 0 {
		r.rep.GrantVsRaw = r.rep.GrantSeconds / r.rep.RawAuthorize
	}
	heap1, rss1 := heapAlloc(), rssBytes()
	r.rep.HeapPerGrant = float64(int64(heap1)-int64(heap0)) / float64(n)
	r.rep.RSSPerGrant = float64(rss1-rss0) / float64(n)
	// The simulator shares this process; its rules are EC2's memory, not
	// latch's.
	r.rep.BytesPerGrant = max(0, r.rep.HeapPerGrant-r.rep.SimHeapPerRule)
	calls1, err := r.calls(ctx)
	if err != nil {
		return err
	}

	jump := time.Now()
	ends, err := r.expire(ctx, "burst", n, func() { r.clock.Advance(duration + time.Second) })
	if err != nil {
		return err
	}
	calls2, err := r.calls(ctx)
	if err != nil {
		return err
	}
	lags := make([]float64, len(ends))
	for i, t := range ends {
		lags[i] = t.Sub(jump).Seconds()
	}
	r.rep.BurstLagP50, r.rep.BurstLagP99, r.rep.BurstLagMax = quantiles(lags)
	if d := ends[len(ends)-1].Sub(jump).Seconds(); d > 0 {
		r.rep.BurstPerSec = float64(n) / d
	}
	r.rep.RevokeCalls = calls2.sub(calls1)["RevokeSecurityGroupIngress"]
	r.rep.MutatingCallsOpen = calls1.sub(calls0).mutating()
	r.rep.MutatingCallsEnd = calls2.sub(calls1).mutating()
	r.rep.MutatingPerGrant = float64(r.rep.MutatingCallsOpen+r.rep.MutatingCallsEnd) / float64(n)
	r.describesPerGrant = float64(calls2.sub(calls0).describes()) / float64(n)
	return nil
}

// expire runs the revoker, calls move (which moves the clock), and returns
// when want grants have ended, with the wall time of each end in order.
func (r *run) expire(ctx context.Context, phase string, want int, move func()) ([]time.Time, error) {
	r.obs.reset()
	// No sweeper: this measures the expiry path; the sweep phase measures
	// sweeps.
	rv := revoker.New(r.store, r.revoking, nil, revoker.Options{Clock: r.clock, Logger: r.opts.Logger.With("component", "revoker")})
	defer r.throttled()()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rv.Run(rctx) }()
	defer func() { stop(); <-done }()
	move()
	return r.waitEnds(ctx, phase, want)
}

// waitEnds waits until want grants have ended, failing if none ends for
// Stall.
func (r *run) waitEnds(ctx context.Context, phase string, want int) ([]time.Time, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, lastAt := 0, time.Now()
	for {
		n := r.obs.count()
		r.opts.Progress(phase, min(n, want), want)
		if n >= want {
			return r.obs.ends()[:want], nil
		}
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > r.opts.Stall {
			return nil, fmt.Errorf("%s: %d of %d grants ended, then none for %s", phase, n, want, r.opts.Stall)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// sweep leaves N expired, tagged rules in the managed groups, as a lost
// database would, and times one broker sweep over them, counting its
// Describe and Revoke calls.
func (r *run) sweep(ctx context.Context) error {
	n := r.opts.Grants
	expired := r.clock.Now().Add(-time.Minute)
	var g errgroup.Group
	g.SetLimit(4)
	var done progressCounter
	for i := range n {
		g.Go(func() error {
			req := r.request(phaseSweep, i, 0)
			o := latch.Opening{Region: region, GroupID: req.GroupID, Protocol: req.Protocol, Ports: req.Ports, Source: req.Source}
			tags := latch.RuleTags(latch.Grant{ID: latch.NewGrantID(), ExpiresAt: expired, Requester: "bench@latch"})
			if _, _, err := r.fw.Authorize(ctx, o, tags); err != nil {
				return fmt.Errorf("open expired rule %d: %w", i, err)
			}
			r.opts.Progress("sweep setup", done.add(), n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	calls0, err := r.calls(ctx)
	if err != nil {
		return err
	}
	r.opts.Progress("sweep", 0, 1)
	start := time.Now()
	unthrottle := r.throttled()
	err = r.revoking.Sweep(ctx)
	unthrottle()
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	r.rep.SweepSeconds = time.Since(start).Seconds()
	r.opts.Progress("sweep", 1, 1)
	calls1, err := r.calls(ctx)
	if err != nil {
		return err
	}
	d := calls1.sub(calls0)
	r.rep.SweepRules = n
	r.rep.DescribeCalls = d.describes()
	r.rep.SweepRevokes = d["RevokeSecurityGroupIngress"]
	if left := len(r.sim.Rules(region, "")); left != 0 {
		return fmt.Errorf("sweep left %d rules open", left)
	}
	return nil
}

// spread opens N grants whose expiries fall one second apart over the
// window, moves the clock one second per SpreadStep of wall time, and
// measures each grant's lag from the step that passed its expiry.
func (r *run) spread(ctx context.Context) error {
	n, w := r.opts.Grants, int(r.opts.SpreadWindow/time.Second)
	r.rep.SpreadWindow = r.opts.SpreadWindow.Seconds()
	for i := range n {
		if _, err := r.broker.Grant(ctx, r.request(phaseSpread, i, duration+time.Duration(i%w)*time.Second)); err != nil {
			return fmt.Errorf("spread grant %d of %d: %w", i+1, n, err)
		}
		r.opts.Progress("open (spread)", i+1, n)
	}
	first := r.clock.Now().Add(duration)
	crossed := make([]time.Time, w)
	var stepErr error
	ends, err := r.expire(ctx, "spread", n, func() {
		for k := range w {
			r.clock.Set(first.Add(time.Duration(k) * time.Second))
			crossed[k] = time.Now()
			if k == w-1 {
				return
			}
			t := time.NewTimer(r.opts.SpreadStep)
			select {
			case <-ctx.Done():
				t.Stop()
				stepErr = ctx.Err()
				return
			case <-t.C:
			}
		}
	})
	if err = errors.Join(stepErr, err); err != nil {
		return err
	}
	// The observer is not told which grant ended, so ends are matched to
	// expiries in order: the revoker takes due grants oldest expiry first,
	// so this is exact while each second's grants end before the next
	// second's, and close to it otherwise.
	lags := make([]float64, 0, n)
	for k, i := 0, 0; k < w; k++ {
		for c := count(n, w, k); c > 0 && i < len(ends); c-- {
			lags = append(lags, max(0, ends[i].Sub(crossed[k]).Seconds()))
			i++
		}
	}
	r.rep.SpreadLagP50, r.rep.SpreadLagP99, r.rep.SpreadLagMax = quantiles(lags)
	return nil
}

// count is how many of i in [0, n) have i mod w == k.
func count(n, w, k int) int {
	c := n / w
	if k < n%w {
		c++
	}
	return c
}

// shared opens SharedOpenings (K) rules with S grants each, every
// sharer's expiry the first's (not later), expires them together, and
// reports per sharer beyond the first the mutating calls beyond the rules'
// own (K authorizes, and a revoke per group they are in), and the
// Describe calls beyond an unshared grant's each.
func (r *run) shared(ctx context.Context) error {
	k, s := r.opts.SharedOpenings, r.opts.Sharers
	calls0, err := r.calls(ctx)
	if err != nil {
		return err
	}
	for j := range k {
		for range s {
			if _, err := r.broker.Grant(ctx, r.request(phaseShared, j, duration)); err != nil {
				return fmt.Errorf("shared grant on opening %d: %w", j, err)
			}
		}
		r.opts.Progress("open (shared)", j+1, k)
	}
	if _, err := r.expire(ctx, "shared", k*s, func() { r.clock.Advance(duration + time.Second) }); err != nil {
		return err
	}
	calls1, err := r.calls(ctx)
	if err != nil {
		return err
	}
	d := calls1.sub(calls0)
	sharers := float64(k * (s - 1))
	// The K rules alone cost K authorizes and, batched per group, one
	// revoke per group they are in; whatever is beyond that the sharers
	// cost.
	own := k + min(k, len(r.groups))
	r.rep.SharedMutating = float64(d.mutating()-own) / sharers
	r.rep.SharedDescribes = (float64(d.describes()) - float64(k*s)*r.describesPerGrant) / sharers
	return nil
}

// throttled turns the simulator's token buckets on, if the run models
// them, fresh and full, and returns what turns them off again, counting
// the requests they refused.
func (r *run) throttled() (off func()) {
	if r.opts.Throttle == nil {
		return func() {}
	}
	before := r.sim.Throttled("")
	r.sim.SetThrottle(r.opts.Throttle)
	return func() {
		r.sim.SetThrottle(nil)
		r.rep.ThrottledRequests += r.sim.Throttled("") - before
	}
}
