package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/awstest"
)

// unmanagedGroup creates a security group without latch:managed=true on
// the world's endpoint, and at cleanup revokes any rule left in it.
func (w *world) unmanagedGroup(t *testing.T) latch.GroupID {
	t.Helper()
	ctx := context.Background()
	out, err := w.env.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(fmt.Sprintf("latch-test-unmanaged-%d", time.Now().UnixNano())),
		Description: aws.String("latch test group, not managed"),
	})
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	id := latch.GroupID(aws.ToString(out.GroupId))
	t.Cleanup(func() {
		for _, r := range w.env.Ingress(t, id) {
			_, _ = w.env.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(string(id)),
				SecurityGroupRuleIds: []string{aws.ToString(r.SecurityGroupRuleId)}})
		}
	})
	return id
}

// refusedUnmanaged checks that a command was refused for group's missing
// tag and that nothing changed: no rule in the group, no grant recorded.
func (w *world) refusedUnmanaged(t *testing.T, r result, group latch.GroupID) {
	t.Helper()
	if r.code != exitRuntime {
		t.Errorf("exit %d, want %d; stdout %q stderr %q", r.code, exitRuntime, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, string(group)) || !strings.Contains(r.stderr, "latch:managed=true") {
		t.Errorf("stderr %q does not name %s and the tag latch:managed=true", r.stderr, group)
	}
	if rules := w.env.Ingress(t, group); len(rules) != 0 {
		t.Errorf("%d rules opened in unmanaged %s", len(rules), group)
	}
	w.noGrantOn(t, group)
}

// noGrantOn checks that the store records no grant, of any state, on group.
func (w *world) noGrantOn(t *testing.T, group latch.GroupID) {
	t.Helper()
	all := w.latch(t, "ls", "--all", "--json")
	if all.code != 0 {
		t.Fatalf("ls --all: exit %d %s", all.code, all.stderr)
	}
	for _, g := range lsOut(t, all.stdout) {
		if g.GroupID == group {
			t.Errorf("a grant was recorded on %s: %+v", group, g)
		}
	}
}

// Direct `latch grant` opens only groups tagged latch:managed=true, as the
// server does.
func TestDirectGrantRefusesAnUnmanagedGroup(t *testing.T) {
	w := newWorld(t)
	group := w.unmanagedGroup(t)
	r := w.latch(t, "grant", "--sg", string(group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach")
	w.refusedUnmanaged(t, r, group)
}

// `latch ssh --direct` to an instance whose only group is unmanaged opens
// nothing.
func TestSSHDirectRefusesAnInstanceWithoutAManagedGroup(t *testing.T) {
	w := newWorld(t)
	group := w.env.Group(t, nil)
	name := awstest.Unique("plain-1")
	instance := w.env.Instance(t, map[string]string{"Name": name}, group)
	r := w.latch(t, "ssh", "--direct", "--method", "instance-connect", "--ip", "203.0.113.7", name, "--", "true")
	if r.code != exitRuntime || !strings.Contains(r.stderr, instance) || !strings.Contains(r.stderr, "latch:managed=true") {
		t.Errorf("exit %d, stderr %q; want 1 naming %s and latch:managed=true", r.code, r.stderr, instance)
	}
	if n := len(w.env.Rules(t, group)); n != 0 {
		t.Errorf("%d rules opened in %s", n, group)
	}
	w.noGrantOn(t, group)
}

// A direct grant records who asked as AWS knows them: the caller's ARN
// from sts:GetCallerIdentity, in the store and on the rule's tag, not
// $USER@hostname.
func TestDirectGrantRecordsTheCallersARN(t *testing.T) {
	w := newWorld(t)
	const arn = aliceARN
	w.env.Identity(t, "AKIDALICE", "alice-secret", arn)
	w.vars["AWS_ACCESS_KEY_ID"], w.vars["AWS_SECRET_ACCESS_KEY"] = "AKIDALICE", "alice-secret"
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach", "--json")
	if r.code != 0 {
		t.Fatalf("grant: exit %d %s", r.code, r.stderr)
	}
	g := grantOut(t, r.stdout)
	if g.Requester.Display != arn {
		t.Errorf("requester = %q, want %q", g.Requester.Display, arn)
	}
	if tag := w.rules(t)[g.RuleID][latch.TagRequester]; tag != arn {
		t.Errorf("rule's %s tag = %q, want %q", latch.TagRequester, tag, arn)
	}
	ls := lsOut(t, w.latch(t, "ls", "--json").stdout)
	if len(ls) != 1 || ls[0].Requester.Display != arn {
		t.Errorf("ls = %+v, want the grant with requester %s", ls, arn)
	}
}

// When STS cannot say who the caller is, a direct grant is refused in one
// line, and nothing falls back to $USER.
func TestDirectGrantRefusedWhenSTSCannotNameTheCaller(t *testing.T) {
	w := newWorld(t)
	w.vars["AWS_ACCESS_KEY_ID"], w.vars["AWS_SECRET_ACCESS_KEY"] = "AKIDNOBODY", "nobody-secret"
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach")
	if r.code != exitRuntime || !strings.Contains(r.stderr, "GetCallerIdentity") {
		t.Errorf("exit %d, stderr %q; want 1 naming GetCallerIdentity", r.code, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("%d rules opened", n)
	}
}

// `latch lambda`'s direct invoke: 12 hours on every TCP port, as the
// recipe allowed, is refused by default, naming the ask and the limits;
// LATCH_MAX_DURATION and LATCH_PORTS widen them; an unmanaged group is
// refused whatever the limits.
func TestLambdaDirectInvokeLimits(t *testing.T) {
	w := newWorld(t)
	w.vars["SECURITY_GROUP_ID"], w.vars["ALLOWED_IP"], w.vars["DURATION"] = string(w.group), "203.0.113.7", "600"
	event := func(body string) string {
		path := filepath.Join(w.dir, "event.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tt := range []struct{ ev, says string }{
		{`{"duration": 43200}`, "43200 seconds (12h0m0s) is longer than this function allows; want at most 3600"},
		{`{"port": "1-65535"}`, "tcp 1-65535 is not allowed by this function; allowed: tcp/22"},
	} {
		if r := w.latch(t, "lambda", "--event", event(tt.ev)); r.code != exitUsage || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%s: exit %d %q; want 2 saying %q", tt.ev, r.code, r.stderr, tt.says)
		}
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules opened past the limits", n)
	}

	w.vars["LATCH_MAX_DURATION"], w.vars["LATCH_PORTS"] = "12h", "tcp/22,tcp/8000-8080"
	if r := w.latch(t, "lambda", "--event", event(`{"duration": 43200, "port": "8080"}`)); r.code != 0 {
		t.Fatalf("within configured limits: exit %d %s", r.code, r.stderr)
	}
	unmanaged := w.unmanagedGroup(t)
	r := w.latch(t, "lambda", "--event", event(`{"security_group_id": "`+string(unmanaged)+`"}`))
	w.refusedUnmanaged(t, r, unmanaged)

	for name, v := range map[string]string{"LATCH_PORTS": "udp/53", "LATCH_MAX_DURATION": "13h"} {
		old := w.vars[name]
		w.vars[name] = v
		if r := w.latch(t, "lambda", "--event", event(`{}`)); r.code != exitUsage || !strings.Contains(r.stderr, v) {
			t.Errorf("%s=%s: exit %d %q; want 2 naming it", name, v, r.code, r.stderr)
		}
		w.vars[name] = old
	}
}

// Direct `latch grant --instance` resolves the instance to its one managed
// group, as the server does, and refuses an instance without one.
func TestDirectGrantByInstance(t *testing.T) {
	w := newWorld(t)
	fleet := w.env.DemoFleet(t)
	plainGroup := w.env.Group(t, nil)
	plainName := awstest.Unique("plain-1")
	plain := w.env.Instance(t, map[string]string{"Name": plainName}, plainGroup)
	r := w.latch(t, "grant", "--instance", fleet.Web1Name, "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach", "--json")
	if r.code != 0 {
		t.Fatalf("grant --instance %s: exit %d %s", fleet.Web1Name, r.code, r.stderr)
	}
	if g := grantOut(t, r.stdout); g.GroupID != fleet.WebGroup {
		t.Errorf("opened %s, want web-1's managed group %s", g.GroupID, fleet.WebGroup)
	}
	r = w.latch(t, "grant", "--instance", plainName, "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach")
	if r.code != exitRuntime || !strings.Contains(r.stderr, plain) || !strings.Contains(r.stderr, "latch:managed=true") {
		t.Errorf("plain-1: exit %d %q; want 1 naming %s and the tag", r.code, r.stderr, plain)
	}
	if n := len(w.env.Rules(t, plainGroup)); n != 0 {
		t.Errorf("%s has %d rules; want none", plainGroup, n)
	}
	if r := w.latch(t, "grant", "--instance", fleet.Web1Name, "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x"); r.code != exitUsage {
		t.Errorf("--sg with --instance: exit %d %s; want 2", r.code, r.stderr)
	}
}
