package adopt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/latchdev/latch"
)

// Reader is what Undo reads, when the cloud offers it, to check that an
// interface still has the groups the plan gave it before setting them
// back. A cloud without it is undone blind (see Undo).
type Reader interface {
	// InstanceInterfaces returns the interfaces of each instance named,
	// with their groups: one paged DescribeInstances by ID, not a call per
	// instance. An instance gone is absent from the map.
	InstanceInterfaces(ctx context.Context, ids []latch.InstanceID) (map[latch.InstanceID][]latch.NetworkInterface, error)
}

// Undo reverses what Apply recorded for planID, newest change first, from
// the audit log alone: each removed rule is authorized again exactly as it
// was read, each attached interface is set back to its groups before the
// plan, and a group the plan created is deleted. Each step undone is
// recorded as AuditAdoptUndone; when nothing was left in place a last
// AuditAdoptUndone entry (details undo=complete) closes the plan.
//
// What it chose where the world moved on:
//   - an interface whose groups are no longer the plan's After (someone
//     changed them since) is left as it is, with a warning naming both
//     lists, and so is the group it still carries; a Reader is needed to
//     see this, and a cloud without one is set back blind, with a warning
//     saying so;
//   - a created group EC2 will not delete (still attached somewhere: EC2
//     refuses with DependencyViolation) is left, with a warning; it carries
//     latch:adopt-plan, so it can be found from AWS alone. Rules on a group
//     attached to nothing open nothing, so they do not stop the delete.
//
// Steps left in place keep the plan open: Undo again retries them, and
// skips what it undid before. Returns ENOTFOUND for a plan the log does
// not hold, and ECONFLICT for one already undone, saying when.
func Undo(ctx context.Context, planID string, cloud latch.AdoptCloud, log AuditLog, sign func(string) string, clock latch.Clock, actor string) (Result, error) {
	res := Result{PlanID: planID, Done: []Outcome{}}
	if planID == "" {
		return res, latch.Invalidf("plan", "empty: name the plan ID apply printed (adopt-YYYYMMDD-…)")
	}
	if actor == "" {
		return res, latch.Invalidf("actor", "empty: an undo records who made it")
	}
	es, err := log.AuditEntries(ctx, latch.AuditFilter{Target: planID})
	if err != nil {
		return res, fmt.Errorf("undo plan %s: read its audit entries: %w", planID, err)
	}
	var planned *latch.AuditEntry
	var changed []latch.AuditEntry
	undone := map[int]latch.AuditEntry{}
	for _, e := range es {
		switch e.Action {
		case latch.AuditAdoptPlanned:
			planned = &e
		case latch.AuditAdoptChanged:
			// Two applies at once may both record a step: undo it once.
			changed = slices.DeleteFunc(changed, func(c latch.AuditEntry) bool { return c.Details[keyStep] == e.Details[keyStep] })
			changed = append(changed, e)
		case latch.AuditAdoptUndone:
			if e.Details[keyUndo] == "complete" {
				return res, latch.Errorf(latch.ECONFLICT, "plan %s was undone already, at %s by %s", planID, e.At.UTC().Format("2006-01-02 15:04:05Z"), e.Actor)
			}
			if i, err := strconv.Atoi(e.Details[keyStep]); err == nil {
				undone[i] = e
			}
		}
	}
	if planned == nil {
		return res, latch.Errorf(latch.ENOTFOUND, "no adoption plan %s in the audit log", planID)
	}
	plan, err := decodePlan(planID, *planned)
	if err != nil {
		return res, err
	}

	var attached []latch.InstanceID
	for _, e := range changed {
		i, _ := strconv.Atoi(e.Details[keyStep])
		if _, done := undone[i]; done {
			continue
		}
		if e.Details[keyKind] == string(AttachGroup) && !slices.Contains(attached, latch.InstanceID(e.Details[keyInstance])) {
			attached = append(attached, latch.InstanceID(e.Details[keyInstance]))
		}
	}
	reader, canRead := cloud.(Reader)
	var current map[latch.InstanceID][]latch.NetworkInterface
	if len(attached) > 0 {
		if canRead {
			if current, err = reader.InstanceInterfaces(ctx, attached); err != nil {
				return res, fmt.Errorf("undo plan %s: read the groups of %s: %w", planID, joinIDs(attached), err)
			}
		} else {
			res.Warnings = append(res.Warnings, "interfaces were set back to their groups before the plan without checking that nobody changed them since: this cloud cannot read them")
		}
	}

	left := false                         // something stays in place: the plan stays open
	inUse := map[latch.GroupID][]string{} // created groups an interface left in place still carries
	for j := len(changed) - 1; j >= 0; j-- {
		e := changed[j]
		i, err := strconv.Atoi(e.Details[keyStep])
		if err != nil || i < 0 || i >= len(plan.Steps) {
			return res, latch.Errorf(latch.EINTERNAL, "plan %s: audit entry %d records step %q, which the plan does not have", planID, e.Seq, e.Details[keyStep])
		}
		s := plan.Steps[i]
		gid := latch.GroupID(e.Details[keyGroup])
		s.Group = gid
		out := Outcome{Index: i, Step: s, Group: gid}
		if u, ok := undone[i]; ok {
			out.Reason = fmt.Sprintf("undone already (audit entry %d)", u.Seq)
			res.Skipped = append(res.Skipped, out)
			continue
		}
		d := map[string]string{keyStep: e.Details[keyStep], keyKind: e.Details[keyKind], keyVPC: e.Details[keyVPC], keyGroup: string(gid)}
		switch StepKind(e.Details[keyKind]) {
		case RemoveRule:
			r, rerr := unmarshalRule(e.Details[keyRule])
			if rerr != nil {
				return res, latch.Errorf(latch.EINTERNAL, "plan %s: audit entry %d holds a rule that is not JSON: %v", planID, e.Seq, rerr)
			}
			if r.GroupID == "" {
				r.GroupID = gid
			}
			out.Step.Rule = &r
			d[keyRule], d[keyFinding] = e.Details[keyRule], e.Details[keyFinding]
			var id latch.RuleID
			if id, err = cloud.RestoreRule(ctx, r); err == nil {
				out.RuleID, d[keyRestored] = id, string(id)
			}
		case AttachGroup:
			var before, after []latch.GroupID
			if err := errors.Join(json.Unmarshal([]byte(e.Details[keyBefore]), &before), json.Unmarshal([]byte(e.Details[keyAfter]), &after)); err != nil {
				return res, latch.Errorf(latch.EINTERNAL, "plan %s: audit entry %d holds groups that are not JSON: %v", planID, e.Seq, err)
			}
			inst, eni := latch.InstanceID(e.Details[keyInstance]), e.Details[keyInterface]
			out.Step.Instance, out.Step.Interface, out.Step.Before, out.Step.After = inst, eni, before, after
			where := string(inst)
			if eni != "" {
				where += " (" + eni + ")"
			}
			if canRead {
				now, found := groupsNow(current[inst], eni)
				switch {
				case !found:
					out.Reason = fmt.Sprintf("%s is gone: nothing to set back", where)
					res.Skipped = append(res.Skipped, out)
					continue
				case sameSet(now, before):
					out.Reason = fmt.Sprintf("%s has its groups before the plan already", where)
					res.Skipped = append(res.Skipped, out)
					continue
				case !sameSet(now, after):
					out.Reason = fmt.Sprintf("%s's groups changed since the plan: they are [%s], not the plan's [%s]; left as they are (set them by hand to [%s] to finish)",
						where, joinIDs(now), joinIDs(after), joinIDs(before))
					res.Skipped, res.Warnings, left = append(res.Skipped, out), append(res.Warnings, out.Reason), true
					if slices.Contains(now, gid) {
						inUse[gid] = append(inUse[gid], where)
					}
					continue
				}
			}
			d[keyInstance], d[keyInterface], d[keyBefore], d[keyAfter] = string(inst), eni, e.Details[keyBefore], e.Details[keyAfter]
			if eni == "" {
				err = cloud.SetInstanceGroups(ctx, inst, before)
			} else {
				err = cloud.SetInterfaceGroups(ctx, eni, before)
			}
		case CreateGroup:
			if users := inUse[gid]; len(users) > 0 {
				out.Reason = fmt.Sprintf("not deleting %s: %s still carries it", gid, joinIDs(users))
				res.Skipped, res.Warnings, left = append(res.Skipped, out), append(res.Warnings, out.Reason), true
				continue
			}
			if err := cloud.DeleteGroup(ctx, gid); err != nil {
				// EC2 refuses to delete a group in use; the rest of the undo stands.
				out.Reason = fmt.Sprintf("not deleting %s: %v; it is tagged %s=%s, delete it once nothing uses it", gid, err, latch.TagAdoptPlan, planID)
				res.Skipped, res.Warnings, left = append(res.Skipped, out), append(res.Warnings, out.Reason), true
				d[keyError], d[keyPhase] = err.Error(), "undo"
				if _, aerr := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: actor, Action: latch.AuditAdoptFailed, Target: planID, Details: d}, sign); aerr != nil {
					return res, fmt.Errorf("undo plan %s: record that %s was not deleted: %w", planID, gid, aerr)
				}
				continue
			}
		default:
			return res, latch.Errorf(latch.EINTERNAL, "plan %s: audit entry %d records a step of kind %q", planID, e.Seq, e.Details[keyKind])
		}
		if err != nil {
			d[keyError], d[keyPhase] = err.Error(), "undo"
			if _, aerr := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: actor, Action: latch.AuditAdoptFailed, Target: planID, Details: d}, sign); aerr != nil {
				return res, fmt.Errorf("undo plan %s: step %d (%s): %w; and recording the failure: %w", planID, i, s.Kind, err, aerr)
			}
			return res, fmt.Errorf("undo plan %s: step %d (%s): %w; undo again to go on", planID, i, s.Kind, err)
		}
		if _, err := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: actor, Action: latch.AuditAdoptUndone, Target: planID, Details: d}, sign); err != nil {
			return res, fmt.Errorf("undo plan %s: step %d (%s) was undone but could not be recorded: %w", planID, i, s.Kind, err)
		}
		res.Done = append(res.Done, out)
	}
	if !left {
		if _, err := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: actor, Action: latch.AuditAdoptUndone, Target: planID,
			Details: map[string]string{keyUndo: "complete", "steps": strconv.Itoa(len(res.Done))}}, sign); err != nil {
			return res, fmt.Errorf("undo plan %s: record its end: %w", planID, err)
		}
	}
	return res, nil
}

// Recorded returns the plan recorded under planID, so that a caller given
// only the ID (latch adopt --undo) learns its region before it builds a
// cloud for it. Returns ENOTFOUND for a plan the log does not hold.
func Recorded(ctx context.Context, log AuditLog, planID string) (Plan, error) {
	if planID == "" {
		return Plan{}, latch.Invalidf("plan", "empty: name the plan ID apply printed (adopt-YYYYMMDD-…)")
	}
	es, err := log.AuditEntries(ctx, latch.AuditFilter{Target: planID})
	if err != nil {
		return Plan{}, fmt.Errorf("read plan %s: %w", planID, err)
	}
	for _, e := range es {
		if e.Action != latch.AuditAdoptPlanned {
			continue
		}
		return decodePlan(planID, e)
	}
	return Plan{}, latch.Errorf(latch.ENOTFOUND, "no adoption plan %s in the audit log", planID)
}

// decodePlan reads the plan an adopt-planned entry recorded.
func decodePlan(planID string, e latch.AuditEntry) (Plan, error) {
	var p Plan
	if err := json.Unmarshal([]byte(e.Details[keyPlan]), &p); err != nil {
		return Plan{}, latch.Errorf(latch.EINTERNAL, "plan %s: its recorded plan (audit entry %d) is not a plan: %v", planID, e.Seq, err)
	}
	return p, nil
}

// groupsNow returns the groups of interface eni ("" for the instance's
// only one) among ifaces, and whether it is there.
func groupsNow(ifaces []latch.NetworkInterface, eni string) ([]latch.GroupID, bool) {
	if eni == "" {
		if len(ifaces) == 1 {
			return ifaces[0].Groups, true
		}
		return nil, false
	}
	for _, ni := range ifaces {
		if ni.ID == eni {
			return ni.Groups, true
		}
	}
	return nil, false
}

// sameSet reports whether a and b hold the same groups: EC2 does not keep
// their order.
func sameSet(a, b []latch.GroupID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
