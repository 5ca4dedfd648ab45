package main

import (
	"strings"
	"testing"
)

func TestDoctor(t *testing.T) {
	w := newWorld(t)
	w.vars["AWS_ACCESS_KEY_ID"] = "AKIDUNKNOWN"
	r := w.latch(t, "doctor")
	if r.code != exitRuntime || !strings.Contains(r.stdout, "FAIL  credentials us-east-1") {
		t.Fatalf("unknown credentials: exit %d\n%s", r.code, r.stdout)
	}
	w.vars["AWS_ACCESS_KEY_ID"] = "AKIDLATCHTEST"
	r = w.latch(t, "doctor", "--json")
	checks := decode[struct{ Checks []check }](t, r.stdout).Checks
	got := map[string]check{}
	for _, c := range checks {
		got[c.Name] = c
	}
	if r.code != 0 || !got["credentials us-east-1"].OK || !strings.Contains(got["credentials us-east-1"].Detail, testCallerARN) ||
		!got["managed groups us-east-1"].OK || got["backstop us-east-1"].OK || !strings.Contains(got["backstop us-east-1"].Detail, "--backstop-role-arn") ||
		!got["grant database"].OK {
		t.Fatalf("doctor: exit %d %+v", r.code, checks)
	}

	w.vars["LATCH_BACKSTOP_ROLE_ARN"] = "arn:aws:iam::123456789012:role/latch-scheduler"
	w.vars["LATCH_BACKSTOP_GROUP"] = "no-such-group"
	if r := w.latch(t, "doctor"); r.code != exitRuntime || !strings.Contains(r.stdout, `FAIL  backstop us-east-1`) {
		t.Fatalf("backstop with a missing schedule group: exit %d\n%s", r.code, r.stdout)
	}
	w.vars["LATCH_BACKSTOP_GROUP"] = "default"
	if r := w.latch(t, "doctor"); r.code != 0 || !strings.Contains(r.stdout, "ok    backstop us-east-1") {
		t.Fatalf("backstop set up: exit %d\n%s", r.code, r.stdout)
	}
}
