package adopt_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/adopt"
)

// newPlan is fleet's plan for i-web and i-db, with a group to create (sg-m
// is made unusable), both instances reachable by Session Manager, and the
// shared group forced: create, two attaches, three removals.
func newPlan(t *testing.T) (latch.Estate, adopt.Plan) {
	t.Helper()
	e := fleet()
	e.Groups[3].Ingress = append(e.Groups[3].Ingress, rule("sgr-m2", "sg-m", "tcp", 80, 80, "10.0.0.0/8"))
	e.Instances[0].SSM, e.Instances[1].SSM = "Online", "Online"
	in := input(e, "i-web", "i-db")
	in.Force = true
	p := mustPlan(t, in)
	if n := len(p.Steps); n != 6 {
		t.Fatalf("plan has %d steps, want 6: %v", n, steps(p))
	}
	return e, p
}

func TestApplyRecordsThePlanFirstAndEachChange(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	cloud := newFake(t, e, log)
	res, err := adopt.Apply(t.Context(), p, cloud, log, nil, clock())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CreateGroup vpc-1", "SetInstanceGroups i-web", "SetInstanceGroups i-db",
		"RemoveRule sgr-d22", "RemoveRule sgr-s3389", "RemoveRule sgr-w22"}
	if !slices.Equal(cloud.calls, want) {
		t.Errorf("calls %v, want %v", cloud.calls, want)
	}
	es := entries(t, log, planID)
	if got := actions(es); !slices.Equal(got, []string{"adopt-planned", "adopt-changed create-group", "adopt-changed attach-group",
		"adopt-changed attach-group", "adopt-changed remove-rule", "adopt-changed remove-rule", "adopt-changed remove-rule"}) {
		t.Errorf("entries %v", got)
	}
	var recorded adopt.Plan
	if err := json.Unmarshal([]byte(es[0].Details["plan"]), &recorded); err != nil || recorded.ID != planID || len(recorded.Steps) != 6 {
		t.Errorf("planned entry holds %q (%v)", es[0].Details["plan"], err)
	}
	for _, e := range es {
		if e.Actor != "alice@example.com" || e.Target != planID {
			t.Errorf("entry %d: actor %q target %q", e.Seq, e.Actor, e.Target)
		}
	}
	// The created group is resolved everywhere it is used.
	created := res.Done[0].Group
	if created != "sg-new1" || es[1].Details["group"] != "sg-new1" {
		t.Errorf("created %q, recorded %q", created, es[1].Details["group"])
	}
	if got := cloud.ifaces["i-db"][0].Groups; !slices.Equal(got, []latch.GroupID{"sg-db", "sg-new1"}) {
		t.Errorf("i-db's groups %v", got)
	}
	if cloud.tags["sg-new1"][latch.TagAdoptPlan] != planID || cloud.tags["sg-new1"][latch.TagManaged] != "true" {
		t.Errorf("created group's tags %v", cloud.tags["sg-new1"])
	}
	// The rule is recorded in a spelling of adopt's own: the log outlives
	// the Go type.
	if got, want := es[6].Details["rule"], `{"id":"sgr-w22","group":"sg-web","protocol":"tcp","from_port":22,"to_port":22,"cidr":"0.0.0.0/0",`+
		`"description":"ssh for the on-call","tags":{"team":"web","ticket":"OPS-7"}}`; got != want {
		t.Errorf("removal records rule\n%s\nwant\n%s", got, want)
	}
	if len(cloud.rules["sg-web"]) != 2 || len(cloud.rules["sg-db"]) != 0 {
		t.Errorf("rules left: sg-web %v sg-db %v", cloud.rules["sg-web"], cloud.rules["sg-db"])
	}
}

func TestApplyStopsAtAFailureAndResumes(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	cloud := newFake(t, e, log)
	cloud.fail["SetInstanceGroups i-db"] = true
	res, err := adopt.Apply(t.Context(), p, cloud, log, nil, clock())
	if err == nil || !strings.Contains(err.Error(), "i-db") {
		t.Fatalf("err %v, want the attach to i-db's failure", err)
	}
	if len(res.Done) != 2 {
		t.Errorf("done %d steps, want 2", len(res.Done))
	}
	if got := cloud.mutating(); !slices.Equal(got, []string{"CreateGroup vpc-1", "SetInstanceGroups i-web", "SetInstanceGroups i-db"}) {
		t.Errorf("calls %v: a rule went after a failed attach", got)
	}
	es := entries(t, log, planID)
	last := es[len(es)-1]
	if last.Action != latch.AuditAdoptFailed || last.Details["kind"] != "attach-group" || !strings.Contains(last.Details["error"], "refused by the test") {
		t.Errorf("last entry %s %v", last.Action, last.Details)
	}

	// Again, once the cause is gone: only what is left is made, with the
	// group created the first time.
	delete(cloud.fail, "SetInstanceGroups i-db")
	cloud.calls = nil
	res, err = adopt.Apply(t.Context(), p, cloud, log, nil, clock())
	if err != nil {
		t.Fatal(err)
	}
	if got := cloud.mutating(); !slices.Equal(got, []string{"SetInstanceGroups i-db", "RemoveRule sgr-d22", "RemoveRule sgr-s3389", "RemoveRule sgr-w22"}) {
		t.Errorf("resumed calls %v", got)
	}
	if got := cloud.ifaces["i-db"][0].Groups; !slices.Equal(got, []latch.GroupID{"sg-db", "sg-new1"}) {
		t.Errorf("i-db's groups %v: the created group was not reused", got)
	}
	if len(res.Skipped) != 2 || len(res.Done) != 4 {
		t.Errorf("skipped %d done %d", len(res.Skipped), len(res.Done))
	}
	if n := len(slices.DeleteFunc(entries(t, log, planID), func(e latch.AuditEntry) bool { return e.Action != latch.AuditAdoptPlanned })); n != 1 {
		t.Errorf("%d planned entries, want 1", n)
	}
}

func TestApplyTwiceChangesNothingMore(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	cloud := newFake(t, e, log)
	if _, err := adopt.Apply(t.Context(), p, cloud, log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	n := len(entries(t, log, planID))
	cloud.calls = nil
	res, err := adopt.Apply(t.Context(), p, cloud, log, nil, clock())
	if err != nil {
		t.Fatal(err)
	}
	if len(cloud.calls) != 0 || len(res.Done) != 0 || len(res.Skipped) != 6 {
		t.Errorf("second apply: calls %v, done %d, skipped %d", cloud.calls, len(res.Done), len(res.Skipped))
	}
	if m := len(entries(t, log, planID)); m != n {
		t.Errorf("second apply wrote %d entries", m-n)
	}

	// Another plan under the same ID is refused.
	q := p
	q.Steps = p.Steps[:1]
	if _, err := adopt.Apply(t.Context(), q, cloud, log, nil, clock()); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("a different plan under %s: %v", planID, err)
	}
}

func TestApplyRefusesStepsOutOfOrder(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	p.Steps[1], p.Steps[5] = p.Steps[5], p.Steps[1] // a removal before an attach
	_, err := adopt.Apply(t.Context(), p, newFake(t, e, log), log, nil, clock())
	if latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("err %v, want EINVALID", err)
	}
	if es := entries(t, log, planID); len(es) != 0 {
		t.Errorf("recorded %v for a bad plan", actions(es))
	}
}

// snapshot is what undo must bring back: every group's rules (IDs aside)
// and every interface's groups.
func snapshot(f *fakeCloud) (map[latch.GroupID][]string, map[latch.InstanceID][]latch.GroupID) {
	rules := map[latch.GroupID][]string{}
	for g, rs := range f.rules {
		var out []string
		for _, r := range rs {
			r.ID = ""
			b, _ := json.Marshal(r)
			out = append(out, string(b))
		}
		slices.Sort(out)
		rules[g] = out
	}
	groups := map[latch.InstanceID][]latch.GroupID{}
	for id, nis := range f.ifaces {
		for _, ni := range nis {
			groups[id] = append(groups[id], ni.Groups...)
		}
	}
	return rules, groups
}

func TestUndoRestoresExactly(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	fake := newFake(t, e, log)
	rules, groups := snapshot(fake)
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	fake.calls = nil
	res, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"RestoreRule sgr-w22", "RestoreRule sgr-s3389", "RestoreRule sgr-d22",
		"SetInstanceGroups i-db", "SetInstanceGroups i-web", "DeleteGroup sg-new1"}; !slices.Equal(fake.calls, want) {
		t.Errorf("calls %v, want %v", fake.calls, want)
	}
	gotRules, gotGroups := snapshot(fake)
	if !maps.EqualFunc(gotRules, rules, slices.Equal) {
		t.Errorf("rules after undo:\n%v\nbefore adopt:\n%v", gotRules, rules)
	}
	if !maps.EqualFunc(gotGroups, groups, slices.Equal) {
		t.Errorf("groups after undo %v, before adopt %v", gotGroups, groups)
	}
	if len(res.Done) != 6 || len(res.Warnings) != 0 || res.Done[0].RuleID == "" {
		t.Errorf("done %d, warnings %q, restored as %q", len(res.Done), res.Warnings, res.Done[0].RuleID)
	}
	es := entries(t, log, planID)
	undone := slices.DeleteFunc(slices.Clone(es), func(e latch.AuditEntry) bool { return e.Action != latch.AuditAdoptUndone })
	if len(undone) != 7 || undone[6].Details["undo"] != "complete" || undone[0].Actor != "bob@example.com" {
		t.Errorf("undone entries %v", actions(undone))
	}

	// Twice: refused, saying when.
	_, err = adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob@example.com")
	if latch.ErrorCode(err) != latch.ECONFLICT || !strings.Contains(err.Error(), "2026-12-05 02:00:00Z") {
		t.Errorf("second undo: %v", err)
	}
	// And the plan cannot be applied again.
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("apply after undo: %v", err)
	}
}

func TestUndoAnUnknownPlan(t *testing.T) {
	log := openLog(t)
	_, err := adopt.Undo(t.Context(), "adopt-20261205-nope", newFake(t, fleet(), log), log, nil, clock(), "bob")
	if latch.ErrorCode(err) != latch.ENOTFOUND || !strings.Contains(err.Error(), "adopt-20261205-nope") {
		t.Errorf("err %v, want ENOTFOUND naming the plan", err)
	}
}

func TestUndoAfterACrashUndoesOnlyWhatWasDone(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	fake := newFake(t, e, log)
	rules, groups := snapshot(fake)
	fake.fail["RemoveRule sgr-s3389"] = true // dies after the first removal
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); err == nil {
		t.Fatal("apply did not fail")
	}
	fake.calls = nil
	if _, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"RestoreRule sgr-d22", "SetInstanceGroups i-db", "SetInstanceGroups i-web", "DeleteGroup sg-new1"}; !slices.Equal(fake.calls, want) {
		t.Errorf("calls %v, want %v", fake.calls, want)
	}
	gotRules, gotGroups := snapshot(fake)
	if !maps.EqualFunc(gotRules, rules, slices.Equal) || !maps.EqualFunc(gotGroups, groups, slices.Equal) {
		t.Errorf("after undo: rules %v groups %v", gotRules, gotGroups)
	}
}

func TestUndoFailureResumes(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	fake := newFake(t, e, log)
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	fake.fail["RestoreRule sgr-s3389"] = true
	if _, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob"); err == nil {
		t.Fatal("undo did not fail")
	}
	delete(fake.fail, "RestoreRule sgr-s3389")
	fake.calls = nil
	if _, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"RestoreRule sgr-s3389", "RestoreRule sgr-d22", "SetInstanceGroups i-db", "SetInstanceGroups i-web", "DeleteGroup sg-new1"}; !slices.Equal(fake.calls, want) {
		t.Errorf("resumed undo calls %v, want %v (sgr-w22 restored once)", fake.calls, want)
	}
}

func TestUndoLeavesAnInterfaceThatChanged(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	fake := newFake(t, e, log)
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	fake.ifaces["i-db"][0].Groups = append(fake.ifaces["i-db"][0].Groups, "sg-ops") // someone attached another group
	fake.calls = nil
	res, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(fake.calls, "SetInstanceGroups i-db") || slices.Contains(fake.calls, "DeleteGroup sg-new1") {
		t.Errorf("calls %v: set i-db back over someone's change, or deleted the group it carries", fake.calls)
	}
	if !slices.Contains(fake.calls, "SetInstanceGroups i-web") {
		t.Errorf("calls %v: i-web, unchanged, was not set back", fake.calls)
	}
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "sg-ops") || !strings.Contains(res.Warnings[1], "sg-new1") {
		t.Errorf("warnings %q", res.Warnings)
	}
	// The plan stays open: once i-db is set right, undo finishes.
	fake.ifaces["i-db"][0].Groups = []latch.GroupID{"sg-db", "sg-new1"}
	fake.calls = nil
	if _, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"SetInstanceGroups i-db", "DeleteGroup sg-new1"}; !slices.Equal(fake.calls, want) {
		t.Errorf("second undo calls %v, want %v", fake.calls, want)
	}
}

func TestUndoBlindWarns(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	fake := newFake(t, e, log)
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	fake.ifaces["i-web"][0].Groups = append(fake.ifaces["i-web"][0].Groups, "sg-ops")
	res, err := adopt.Undo(t.Context(), planID, fake, log, nil, clock(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "without checking") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

func TestRecordedAndStepString(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	if _, err := adopt.Recorded(t.Context(), log, planID); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("before apply: %v", err)
	}
	if _, err := adopt.Apply(t.Context(), p, newFake(t, e, log), log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	got, err := adopt.Recorded(t.Context(), log, planID)
	if err != nil || got.Region != "eu-west-1" || len(got.Steps) != len(p.Steps) {
		t.Errorf("recorded %+v, %v", got, err)
	}
	var lines []string
	for _, s := range got.Steps {
		lines = append(lines, s.String())
	}
	want := []string{
		"create group latch-managed-" + planID + " in vpc-1 (latch:managed=true, latch:adopt-plan=" + planID + ")",
		"attach new:vpc-1 to i-web: [sg-web, sg-shared] -> [sg-web, sg-shared, new:vpc-1]",
		"attach new:vpc-1 to i-db: [sg-db] -> [sg-db, new:vpc-1]",
		"remove sgr-d22 (tcp 22 from 0.0.0.0/0 in sg-db), ending F-sgr-d22",
		"remove sgr-s3389 (tcp 3389 from ::/0 in sg-shared), ending F-sgr-s3389",
		`remove sgr-w22 (tcp 22 from 0.0.0.0/0 in sg-web) "ssh for the on-call", ending F-sgr-w22`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestUndoAStepRecordedTwiceOnce(t *testing.T) {
	e, p := newPlan(t)
	log := openLog(t)
	fake := newFake(t, e, log)
	if _, err := adopt.Apply(t.Context(), p, fake, log, nil, clock()); err != nil {
		t.Fatal(err)
	}
	// A second apply running at the same time recorded the last step too.
	es := entries(t, log, planID)
	dup := es[len(es)-1]
	dup.Seq, dup.PrevHash, dup.Hash = 0, "", ""
	if _, err := log.AppendAudit(t.Context(), dup, nil); err != nil {
		t.Fatal(err)
	}
	fake.calls = nil
	if _, err := adopt.Undo(t.Context(), planID, readingCloud{fake}, log, nil, clock(), "bob"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range fake.calls {
		if c == "RestoreRule sgr-w22" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("restored sgr-w22 %d times: %v", n, fake.calls)
	}
}
