package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
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

// doctorChecks runs latch doctor --json with args and returns its exit
// code and checks by name.
func doctorChecks(t *testing.T, w *world, args ...string) (int, map[string]check) {
	t.Helper()
	r := w.latch(t, append([]string{"doctor", "--json"}, args...)...)
	if r.stdout == "" {
		t.Fatalf("doctor %v: exit %d, no output; stderr %s", args, r.code, r.stderr)
	}
	got := map[string]check{}
	for _, c := range decode[struct{ Checks []check }](t, r.stdout).Checks {
		got[c.Name] = c
	}
	return r.code, got
}

// With --ssm-session-role, doctor assumes the role as latch-doctor, lists
// sessions as the sweep does, and checks each --target: here, on any
// endpoint, an instance not tagged latch:managed=true and one launched
// with no SSM agent (RunInstances starts none) both fail, naming the fix.
func TestDoctorSessionManager(t *testing.T) {
	w := newWorld(t)
	untagged := w.env.Instance(t, map[string]string{"Name": awstest.Unique("untagged")})
	bareName := awstest.Unique("no-agent")
	bare := w.env.Instance(t, map[string]string{"Name": bareName, latch.TagManaged: "true"})

	code, got := doctorChecks(t, w, "--ssm-session-role", sessionRole)
	role, sweep := got["session role us-east-1"], got["session sweep us-east-1"]
	if code != 0 || !role.OK || !strings.Contains(role.Detail, "assumed-role/latch-session/latch-doctor") || !sweep.OK {
		t.Fatalf("doctor with an assumable session role: exit %d\nrole %+v\nsweep %+v", code, role, sweep)
	}

	code, got = doctorChecks(t, w, "--ssm-session-role", sessionRole, "--target", untagged)
	c := got["session target "+untagged]
	if code != exitRuntime || c.OK || !c.Fatal || !strings.Contains(c.Detail, "not tagged latch:managed=true") {
		t.Errorf("untagged target: exit %d %+v", code, c)
	}

	code, got = doctorChecks(t, w, "--ssm-session-role", sessionRole, "--target", bareName)
	c = got["session target "+bareName]
	if code != exitRuntime || c.OK || !strings.Contains(c.Detail, bare) || !strings.Contains(c.Detail, "no SSM agent registered") ||
		!strings.Contains(c.Detail, "AmazonSSMManagedInstanceCore") {
		t.Errorf("target with no agent: exit %d %+v", code, c)
	}

	code, got = doctorChecks(t, w, "--ssm-session-role", sessionRole, "--target", awstest.Unique("nobody"))
	if code != exitRuntime || len(got) == 0 {
		t.Errorf("unknown target: exit %d %+v", code, got)
	}
	for name, c := range got {
		if strings.HasPrefix(name, "session target ") && (c.OK || !strings.Contains(c.Detail, "no instance is named")) {
			t.Errorf("unknown target: %+v", c)
		}
	}

	code, got = doctorChecks(t, w, "--ssm-session-role", "arn:aws:iam::123456789012:user/bob")
	if c := got["session role us-east-1"]; code != exitRuntime || c.OK || !strings.Contains(c.Detail, "not an IAM role ARN") {
		t.Errorf("malformed role: exit %d %+v", code, c)
	}

	if r := w.latch(t, "doctor", "--target", bare); r.code != exitUsage || !strings.Contains(r.stderr, "needs --ssm-session-role") {
		t.Errorf("--target without Session Manager: exit %d %s", r.code, r.stderr)
	}
	// Without the flag, doctor says nothing of Session Manager.
	if code, got := doctorChecks(t, w); code != 0 || got["session role us-east-1"].Name != "" {
		t.Errorf("doctor without --ssm-session-role: exit %d %+v", code, got)
	}
}

// An instance's agent, Online or not, and a session role the server may
// not assume: the agent is the simulator's to set, and so is who may
// assume a role.
func TestDoctorSessionManagerAgentsAndTrust(t *testing.T) {
	env := awstest.New(t)
	sim := env.RequireSim(t, "SetAgent gives instances an SSM agent, and AllowAssume restricts who may assume the session role")
	w := worldOn(t, env, t.TempDir())
	name := awstest.Unique("box")
	box := w.env.Instance(t, map[string]string{"Name": name, latch.TagManaged: "true"})

	for _, tc := range []struct {
		ping string
		ok   bool
		says string
	}{
		{ec2sim.PingOnline, true, "SSM agent Online (Linux, " + ec2sim.DefaultAgentVersion + ")"},
		{ec2sim.PingConnectionLost, false, "PingStatus ConnectionLost, not Online"},
		{ec2sim.PingInactive, false, "PingStatus Inactive, not Online"},
	} {
		if err := sim.SetAgent(awstest.Region, box, ec2sim.Agent{PingStatus: tc.ping}); err != nil {
			t.Fatal(err)
		}
		code, got := doctorChecks(t, w, "--ssm-session-role", sessionRole, "--target", name)
		c := got["session target "+name]
		if c.OK != tc.ok || !strings.Contains(c.Detail, tc.says) || (code == 0) != tc.ok {
			t.Errorf("agent %s: exit %d %+v; want ok=%v saying %q", tc.ping, code, c, tc.ok, tc.says)
		}
		if !tc.ok && (!strings.Contains(c.Detail, "AmazonSSMManagedInstanceCore") || !strings.Contains(c.Detail, "agent runs")) {
			t.Errorf("agent %s: %q does not say what to do", tc.ping, c.Detail)
		}
	}
	// The text report: one line per check, in doctor's style.
	if err := sim.SetAgent(awstest.Region, box, ec2sim.Agent{PingStatus: ec2sim.PingOnline}); err != nil {
		t.Fatal(err)
	}
	r := w.latch(t, "doctor", "--ssm-session-role", sessionRole, "--target", name)
	for _, line := range []string{"ok    session role us-east-1", "ok    session sweep us-east-1", "ok    session target " + name} {
		if r.code != 0 || !strings.Contains(r.stdout, line) {
			t.Errorf("doctor: exit %d, no line %q:\n%s", r.code, line, r.stdout)
		}
	}

	sim.AllowAssume(sessionRole, "arn:aws:iam::123456789012:role/latch-server")
	r = w.latch(t, "doctor", "--ssm-session-role", sessionRole)
	if r.code != exitRuntime || !strings.Contains(r.stdout, "FAIL  session role us-east-1") ||
		!strings.Contains(r.stdout, "is not authorized to perform: sts:AssumeRole") ||
		!strings.Contains(r.stdout, "latch iam-policy --for session-role-trust --server-role-arn "+testCallerARN) {
		t.Errorf("session role refused: exit %d\n%s", r.code, r.stdout)
	}
	if n := sim.Calls("StartSession"); n != 0 {
		t.Errorf("doctor started %d sessions; want none", n)
	}
}

func TestServerRoleARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:sts::123456789012:assumed-role/latch-server/i-0abc": "arn:aws:iam::123456789012:role/latch-server",
		"arn:aws-cn:sts::123456789012:assumed-role/x/y":              "arn:aws-cn:iam::123456789012:role/x",
		"arn:aws:iam::123456789012:user/ops":                         "arn:aws:iam::123456789012:user/ops",
		"":                                                           "ROLE-LATCH-RUNS-AS",
	} {
		if got := serverRoleARN(in); got != want {
			t.Errorf("serverRoleARN(%q) = %q, want %q", in, got, want)
		}
	}
}

// Doctor counts each managed group's inbound rules against the quota and
// warns at 80% or more, per address family, naming what to do; a full
// group says so. Not fatal: latch still works.
func TestDoctorRuleQuota(t *testing.T) {
	w := newWorld(t)
	nearly, full, empty := w.group, w.env.ManagedGroup(t), w.env.ManagedGroup(t)
	fw := w.env.Firewall(t)
	add := func(g latch.GroupID, cidrs ...string) {
		for _, c := range cidrs {
			o := latch.Opening{Region: awstest.Region, GroupID: g, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix(c)}
			if _, _, err := fw.Authorize(t.Context(), o, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(nearly, "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32", "2001:db8::1/128")
	add(full, "2001:db8::1/128", "2001:db8::2/128", "2001:db8::3/128", "2001:db8::4/128", "2001:db8::5/128", "192.0.2.1/32")
	code, got := doctorChecks(t, w, "--rule-quota", "5")
	if code != 0 {
		t.Fatalf("doctor exit %d with groups nearly full; want 0 (a warning)", code)
	}
	for _, tc := range []struct {
		group latch.GroupID
		ok    bool
		says  string
	}{
		{nearly, false, "4 of 5 inbound IPv4 rules (80%); nearly full: attach another group tagged latch:managed=true"},
		{full, false, "5 of 5 inbound IPv6 rules (100%); full: grants on instances with another group"},
		{empty, true, "0 of 5 inbound IPv4 rules (0%)"},
	} {
		c, ok := got["rules "+string(tc.group)]
		if !ok || c.OK != tc.ok || c.Fatal || !strings.Contains(c.Detail, tc.says) {
			t.Errorf("rules %s = %+v; want ok %v, saying %q", tc.group, c, tc.ok, tc.says)
		}
	}
	if r := w.latch(t, "doctor", "--rule-quota", "0"); r.code != exitUsage || !strings.Contains(r.stderr, "--rule-quota 0") {
		t.Errorf("--rule-quota 0: exit %d, %s", r.code, r.stderr)
	}
	r := w.latch(t, "doctor", "--rule-quota", "5")
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, string(nearly)) {
			t.Logf("%s", line)
		}
	}
}
