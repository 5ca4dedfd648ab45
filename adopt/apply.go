package adopt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/latchdev/latch"
)

// AuditLog is the part of [latch.Store] a plan is recorded in: the log is
// the ledger of what was planned, done and undone, so Undo needs nothing
// else.
type AuditLog interface {
	AppendAudit(ctx context.Context, e latch.AuditEntry, sign func(msg string) string) (latch.AuditEntry, error)
	AuditEntries(ctx context.Context, f latch.AuditFilter) ([]latch.AuditEntry, error)
}

// Result is what Apply or Undo did.
type Result struct {
	PlanID   string    `json:"plan_id"`
	Done     []Outcome `json:"done"`
	Skipped  []Outcome `json:"skipped,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
}

// Outcome is one step done or skipped.
type Outcome struct {
	Index int  `json:"index"` // the step's place in the plan
	Step  Step `json:"step"`  // as made: placeholders replaced by the created group
	// Group is the group the step made or changed: for a create, the new
	// group's ID.
	Group latch.GroupID `json:"group,omitempty"`
	// RuleID is a restored rule's new ID (undo of a removal).
	RuleID latch.RuleID `json:"rule_id,omitempty"`
	Reason string       `json:"reason,omitempty"` // skipped: why
}

// The keys of an adopt entry's details.
const (
	keyPlan      = "plan"          // planned: the plan as JSON
	keyStep      = "step"          // the step's index in the plan
	keyKind      = "kind"          // the step's kind
	keyVPC       = "vpc"           //
	keyGroup     = "group"         // the group made or changed (a create: the new group's ID)
	keyInstance  = "instance"      // attach
	keyInterface = "interface"     // attach
	keyBefore    = "before_groups" // attach: JSON list of groups
	keyAfter     = "after_groups"  // attach: JSON list of groups, as set
	keyRule      = "rule"          // remove: the rule as JSON, exactly as read
	keyFinding   = "finding"       // remove
	keyRestored  = "restored"      // undo of a remove: the new rule's ID
	keyError     = "error"         // failed
	keyPhase     = "phase"         // failed: "apply" or "undo"
	keyUndo      = "undo"          // undone: "complete" on the entry that closes an undo
)

// Apply makes p's steps in order, after recording the plan (intent before
// effect): one AuditAdoptPlanned entry, then one AuditAdoptChanged per step
// made. A failing step is recorded as AuditAdoptFailed and stops Apply,
// which returns what was done and the error.
//
// Apply resumes: steps the log records as made are skipped (their created
// group reused), so running it twice, or again after a crash or a failure,
// makes only what is left. A change made whose entry was not written is
// made again, which AdoptCloud's idempotence allows. A plan undone, or a
// different plan under the same ID, is ECONFLICT.
//
// Apply sets an attached interface's groups to the plan's After exactly,
// so it must follow a fresh read: the caller plans and applies in one run.
func Apply(ctx context.Context, p Plan, cloud latch.AdoptCloud, log AuditLog, sign func(string) string, clock latch.Clock) (Result, error) {
	res := Result{PlanID: p.ID, Done: []Outcome{}}
	if err := validatePlan(p); err != nil {
		return res, err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return res, fmt.Errorf("apply plan %s: %w", p.ID, err)
	}
	es, err := log.AuditEntries(ctx, latch.AuditFilter{Target: p.ID})
	if err != nil {
		return res, fmt.Errorf("apply plan %s: read its audit entries: %w", p.ID, err)
	}
	planned := false
	done := map[int]latch.AuditEntry{}
	created := map[latch.GroupID]latch.GroupID{} // placeholder → created group
	for _, e := range es {
		switch e.Action {
		case latch.AuditAdoptPlanned:
			if e.Details[keyPlan] != string(body) {
				return res, latch.Errorf(latch.ECONFLICT, "plan ID %s was recorded at %s for a different plan: make a new plan", p.ID, e.At.UTC().Format("2006-01-02 15:04:05Z"))
			}
			planned = true
		case latch.AuditAdoptUndone:
			return res, latch.Errorf(latch.ECONFLICT, "plan %s was undone at %s by %s: make a new plan", p.ID, e.At.UTC().Format("2006-01-02 15:04:05Z"), e.Actor)
		case latch.AuditAdoptChanged:
			i, err := strconv.Atoi(e.Details[keyStep])
			if err != nil || i < 0 || i >= len(p.Steps) || string(p.Steps[i].Kind) != e.Details[keyKind] {
				return res, latch.Errorf(latch.ECONFLICT, "plan %s: audit entry %d records a step (%s %q) the plan does not have", p.ID, e.Seq, e.Details[keyKind], e.Details[keyStep])
			}
			done[i] = e
			if p.Steps[i].Kind == CreateGroup {
				created[p.Steps[i].Group] = latch.GroupID(e.Details[keyGroup])
			}
		}
	}
	if !planned {
		if _, err := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: p.Actor, Action: latch.AuditAdoptPlanned, Target: p.ID,
			Details: map[string]string{keyPlan: string(body), "region": p.Region, "steps": strconv.Itoa(len(p.Steps))}}, sign); err != nil {
			return res, fmt.Errorf("apply plan %s: record the plan before any change: %w", p.ID, err)
		}
	}
	for i, s := range p.Steps {
		s = resolve(s, created)
		if e, ok := done[i]; ok {
			res.Skipped = append(res.Skipped, Outcome{Index: i, Step: s, Group: latch.GroupID(e.Details[keyGroup]),
				Reason: fmt.Sprintf("made already (audit entry %d)", e.Seq)})
			continue
		}
		d := map[string]string{keyStep: strconv.Itoa(i), keyKind: string(s.Kind), keyVPC: s.VPC}
		out := Outcome{Index: i, Step: s, Group: s.Group}
		var err error
		switch s.Kind {
		case CreateGroup:
			var id latch.GroupID
			id, err = cloud.CreateGroup(ctx, s.VPC, s.Tags["Name"], description(p.ID), s.Tags)
			if err == nil && id == "" {
				err = fmt.Errorf("the cloud returned no group ID")
			}
			if err == nil {
				created[s.Group], out.Group = id, id
				out.Step.Group = id
				d[keyGroup] = string(id)
				d["name"] = s.Tags["Name"]
			}
		case AttachGroup:
			d[keyGroup], d[keyInstance], d[keyInterface] = string(s.Group), string(s.Instance), s.Interface
			d[keyBefore], d[keyAfter] = groupsJSON(s.Before), groupsJSON(s.After)
			if s.Interface == "" {
				err = cloud.SetInstanceGroups(ctx, s.Instance, s.After)
			} else {
				err = cloud.SetInterfaceGroups(ctx, s.Interface, s.After)
			}
		case RemoveRule:
			d[keyGroup], d[keyRule], d[keyFinding] = string(s.Group), marshalRule(*s.Rule), s.Finding
			err = cloud.RemoveRule(ctx, s.Group, s.Rule.ID)
		}
		if err != nil {
			d[keyError], d[keyPhase] = err.Error(), "apply"
			if _, aerr := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: p.Actor, Action: latch.AuditAdoptFailed, Target: p.ID, Details: d}, sign); aerr != nil {
				return res, fmt.Errorf("apply plan %s: step %d (%s): %w; and recording the failure: %w", p.ID, i, s.Kind, err, aerr)
			}
			return res, fmt.Errorf("apply plan %s: step %d (%s %s): %w", p.ID, i, s.Kind, stepSubject(s), err)
		}
		if _, err := log.AppendAudit(ctx, latch.AuditEntry{At: clock.Now(), Actor: p.Actor, Action: latch.AuditAdoptChanged, Target: p.ID, Details: d}, sign); err != nil {
			// The change is made but not recorded: Apply again records it.
			return res, fmt.Errorf("apply plan %s: step %d (%s %s) was made but could not be recorded; apply again to record it: %w", p.ID, i, s.Kind, stepSubject(s), err)
		}
		res.Done = append(res.Done, out)
	}
	return res, nil
}

// validatePlan checks what Apply relies on: an ID, an actor, steps in the
// order create, attach, remove, and attaches that name a group the plan
// creates or one that exists.
func validatePlan(p Plan) error {
	if p.ID == "" {
		return latch.Invalidf("plan.id", "empty")
	}
	if p.Actor == "" {
		return latch.Invalidf("plan.actor", "empty: a plan records who applies it")
	}
	order := map[StepKind]int{CreateGroup: 0, AttachGroup: 1, RemoveRule: 2}
	last := 0
	var creates []latch.GroupID
	for i, s := range p.Steps {
		o, ok := order[s.Kind]
		if !ok {
			return latch.Invalidf("plan.steps", "step %d: kind %q is not create-group, attach-group or remove-rule", i, s.Kind)
		}
		if o < last {
			return latch.Invalidf("plan.steps", "step %d (%s) comes after a later kind: steps go create-group, attach-group, remove-rule, so the managed group is in place before any rule goes", i, s.Kind)
		}
		last = o
		switch s.Kind {
		case CreateGroup:
			if !isPlaceholder(s.Group) || s.VPC == "" || s.Tags["Name"] == "" {
				return latch.Invalidf("plan.steps", "step %d: a create-group needs a VPC, a Name tag and a placeholder group (new:VPC), not %q", i, s.Group)
			}
			creates = append(creates, s.Group)
		case AttachGroup:
			if s.Instance == "" || !slices.Contains(s.After, s.Group) {
				return latch.Invalidf("plan.steps", "step %d: an attach-group needs an instance and its group among After", i)
			}
			if isPlaceholder(s.Group) && !slices.Contains(creates, s.Group) {
				return latch.Invalidf("plan.steps", "step %d: attaches %s, which no step creates", i, s.Group)
			}
		case RemoveRule:
			if s.Rule == nil || s.Rule.ID == "" || s.Group == "" {
				return latch.Invalidf("plan.steps", "step %d: a remove-rule needs a group and the rule as read", i)
			}
		}
	}
	return nil
}

// resolve replaces the placeholders of groups created so far.
func resolve(s Step, created map[latch.GroupID]latch.GroupID) Step {
	if id, ok := created[s.Group]; ok {
		s.Group = id
	}
	if slices.ContainsFunc(s.After, isPlaceholder) {
		after := slices.Clone(s.After)
		for i, g := range after {
			if id, ok := created[g]; ok {
				after[i] = id
			}
		}
		s.After = after
	}
	return s
}

func description(planID string) string {
	return "latch: the group latch opens for requests; no standing rules (created by adopt plan " + planID + ")"
}

func groupsJSON(gs []latch.GroupID) string {
	if gs == nil {
		gs = []latch.GroupID{}
	}
	b, _ := json.Marshal(gs) // strings always marshal
	return string(b)
}

func stepSubject(s Step) string {
	switch s.Kind {
	case CreateGroup:
		return "in " + s.VPC
	case AttachGroup:
		if s.Interface != "" {
			return fmt.Sprintf("%s to %s (%s)", s.Group, s.Instance, s.Interface)
		}
		return fmt.Sprintf("%s to %s", s.Group, s.Instance)
	}
	return describeRule(s.Group, *s.Rule)
}
