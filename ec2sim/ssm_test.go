package ec2sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/latchdev/latch/ec2sim"
)

const sessionRole = "arn:aws:iam::123456789012:role/latch-session"

// latchServer is the identity the latch server runs as.
var latchServer = ec2sim.Identity{
	AccessKeyID:     "AKIALATCHSERVER00001",
	SecretAccessKey: "latch-server-secret",
	ARN:             "arn:aws:iam::123456789012:user/latch-server",
}

// ssmClock is a settable clock near the wall clock, since the SDK signs
// with the wall clock and the simulator holds signatures to 15 minutes.
type ssmClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ssmClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *ssmClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeChannel stands in for ec2sim/datachannel.
type fakeChannel struct {
	mu         sync.Mutex
	terminated []string
}

func (f *fakeChannel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte("channel " + strings.TrimPrefix(r.URL.Path, "/v1/data-channel/")))
}

func (f *fakeChannel) Terminate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated = append(f.terminated, id)
}

func (f *fakeChannel) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.terminated...)
}

type ssmEnv struct {
	sim     *ec2sim.Server
	url     string
	clock   *ssmClock
	channel *fakeChannel
}

func newSSMEnv(t *testing.T, opts ec2sim.Options) *ssmEnv {
	t.Helper()
	e := &ssmEnv{clock: &ssmClock{t: time.Now().UTC()}, channel: &fakeChannel{}}
	opts.Now = e.clock.now
	if opts.DataChannel == nil {
		opts.DataChannel = e.channel
	}
	e.sim = ec2sim.New(opts)
	if err := e.sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AddIdentity(latchServer); err != nil {
		t.Fatal(err)
	}
	e.url = mustStart(t, e.sim)
	return e
}

func (e *ssmEnv) cfg(id ec2sim.Identity) aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken),
		BaseEndpoint:     aws.String(e.url),
		RetryMaxAttempts: 1,
	}
}

func (e *ssmEnv) ssm(id ec2sim.Identity) *ssm.Client { return ssm.NewFromConfig(e.cfg(id)) }

// assume has the latch server assume the session role for requester.
func (e *ssmEnv) assume(t *testing.T, in *sts.AssumeRoleInput) (ec2sim.Identity, *sts.AssumeRoleOutput) {
	t.Helper()
	out, err := sts.NewFromConfig(e.cfg(latchServer)).AssumeRole(t.Context(), in)
	if err != nil {
		t.Fatalf("AssumeRole = %v", err)
	}
	c := out.Credentials
	return ec2sim.Identity{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}, out
}

func (e *ssmEnv) requester(t *testing.T) ec2sim.Identity {
	t.Helper()
	id, _ := e.assume(t, &sts.AssumeRoleInput{
		RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("alice_example.com"), SourceIdentity: aws.String("alice@example.com"),
	})
	return id
}

func (e *ssmEnv) start(t *testing.T, c *ssm.Client, target string) *ssm.StartSessionOutput {
	t.Helper()
	out, err := c.StartSession(t.Context(), &ssm.StartSessionInput{Target: aws.String(target)})
	if err != nil {
		t.Fatalf("StartSession(%s) = %v", target, err)
	}
	return out
}

func wantAs[T error](t *testing.T, err error) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("err = %v (%T), want %T", err, err, target)
	}
}

func TestAssumeRole_IssuesAWorkingTemporaryIdentity(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	id, out := e.assume(t, &sts.AssumeRoleInput{
		RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("alice_example.com"),
		SourceIdentity: aws.String("alice@example.com"), DurationSeconds: aws.Int32(900),
	})
	wantARN := "arn:aws:sts::123456789012:assumed-role/latch-session/alice_example.com"
	switch {
	case !strings.HasPrefix(id.AccessKeyID, "ASIA") || len(id.AccessKeyID) != 20:
		t.Errorf("AccessKeyId = %q, want ASIA and 16 more", id.AccessKeyID)
	case aws.ToString(out.AssumedRoleUser.Arn) != wantARN:
		t.Errorf("Arn = %q, want %q", aws.ToString(out.AssumedRoleUser.Arn), wantARN)
	case !regexp.MustCompile(`^AROA[A-Z0-9]+:alice_example\.com$`).MatchString(aws.ToString(out.AssumedRoleUser.AssumedRoleId)):
		t.Errorf("AssumedRoleId = %q", aws.ToString(out.AssumedRoleUser.AssumedRoleId))
	case aws.ToString(out.SourceIdentity) != "alice@example.com":
		t.Errorf("SourceIdentity = %q", aws.ToString(out.SourceIdentity))
	}
	if got, want := out.Credentials.Expiration.Unix(), e.clock.now().Add(900*time.Second).Unix(); got != want {
		t.Errorf("Expiration = %d, want %d", got, want)
	}
	who, err := sts.NewFromConfig(e.cfg(id)).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Arn) != wantARN {
		t.Fatalf("GetCallerIdentity as the assumed role = %v, %v; want %s", who, err, wantARN)
	}
	bad := id
	bad.SessionToken = "not-the-token"
	_, err = sts.NewFromConfig(e.cfg(bad)).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	wantCode(t, err, ec2sim.CodeInvalidClientTokenID)

	e.clock.add(901 * time.Second)
	_, err = sts.NewFromConfig(e.cfg(id)).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	wantCode(t, err, ec2sim.CodeExpiredToken)
	_, err = e.ssm(id).DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
	wantCode(t, err, ec2sim.CodeSSMExpiredToken)
}

func TestAssumeRole_Errors(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	other := ec2sim.Identity{AccessKeyID: "AKIAOTHER0000000001", SecretAccessKey: "s", ARN: "arn:aws:iam::123456789012:user/mallory"}
	if err := e.sim.AddIdentity(other); err != nil {
		t.Fatal(err)
	}
	restricted := "arn:aws:iam::123456789012:role/restricted"
	e.sim.AllowAssume(restricted, latchServer.ARN)
	tests := []struct {
		name   string
		caller ec2sim.Identity
		in     sts.AssumeRoleInput
		code   string
		msg    string
	}{
		{"short session name", latchServer, sts.AssumeRoleInput{RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("a")}, ec2sim.CodeSTSValidation, "roleSessionName"},
		{"bad session name", latchServer, sts.AssumeRoleInput{RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("alice smith")}, ec2sim.CodeSTSValidation, "regular expression"},
		{"bad source identity", latchServer, sts.AssumeRoleInput{RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("ab"), SourceIdentity: aws.String("a/b")}, ec2sim.CodeSTSValidation, "sourceIdentity"},
		{"reserved source identity", latchServer, sts.AssumeRoleInput{RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("ab"), SourceIdentity: aws.String("aws:me")}, ec2sim.CodeSTSValidation, "aws:"},
		{"short duration", latchServer, sts.AssumeRoleInput{RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("ab"), DurationSeconds: aws.Int32(899)}, ec2sim.CodeSTSValidation, "900"},
		{"long duration", latchServer, sts.AssumeRoleInput{RoleArn: aws.String(sessionRole), RoleSessionName: aws.String("ab"), DurationSeconds: aws.Int32(43201)}, ec2sim.CodeSTSValidation, "43200"},
		{"not a role", latchServer, sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:user/bob"), RoleSessionName: aws.String("ab")}, ec2sim.CodeSTSValidation, "invalid"},
		{"other account", latchServer, sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::999999999999:role/x"), RoleSessionName: aws.String("ab")}, ec2sim.CodeAccessDenied, "not authorized"},
		{"not allowed", other, sts.AssumeRoleInput{RoleArn: aws.String(restricted), RoleSessionName: aws.String("ab")}, ec2sim.CodeAccessDenied, "mallory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sts.NewFromConfig(e.cfg(tt.caller)).AssumeRole(t.Context(), &tt.in)
			wantCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.msg)
			}
		})
	}
	if _, err := sts.NewFromConfig(e.cfg(latchServer)).AssumeRole(t.Context(), &sts.AssumeRoleInput{
		RoleArn: aws.String(restricted), RoleSessionName: aws.String("ab"),
	}); err != nil {
		t.Errorf("AssumeRole by an allowed caller = %v", err)
	}
}

func TestSSM_SessionLifecycle(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	id := e.requester(t)
	c := e.ssm(id)
	reason := "latch g-1234 until 2026-05-01T12:00:00Z"
	out, err := c.StartSession(t.Context(), &ssm.StartSessionInput{
		Target: aws.String(ec2sim.DemoWeb1), DocumentName: aws.String("AWS-StartSSHSession"), Reason: aws.String(reason),
	})
	if err != nil {
		t.Fatal(err)
	}
	sid := aws.ToString(out.SessionId)
	if !regexp.MustCompile(`^alice_example\.com-[0-9a-f]{17}$`).MatchString(sid) {
		t.Errorf("SessionId = %q, want alice_example.com-<17 hex>", sid)
	}
	if want := "ws://" + strings.TrimPrefix(e.url, "http://") + "/v1/data-channel/" + sid + "?role=publish_subscribe"; aws.ToString(out.StreamUrl) != want {
		t.Errorf("StreamUrl = %q, want %q", aws.ToString(out.StreamUrl), want)
	}
	token := aws.ToString(out.TokenValue)
	cs, ok := e.sim.LookupSession(sid)
	if !ok || cs.Token != token || cs.Target != ec2sim.DemoWeb1 || cs.Region != "us-east-1" || cs.Parameters["portNumber"][0] != "22" {
		t.Fatalf("LookupSession = %+v, %v", cs, ok)
	}
	owner := "arn:aws:sts::123456789012:assumed-role/latch-session/alice_example.com"
	got := e.sim.Sessions("us-east-1")
	if len(got) != 1 || got[0].Owner != owner || got[0].Reason != reason || got[0].Status != "Connected" || !got[0].StartDate.Equal(e.clock.now()) {
		t.Fatalf("Sessions = %+v", got)
	}

	resumed, err := c.ResumeSession(t.Context(), &ssm.ResumeSessionInput{SessionId: aws.String(sid)})
	if err != nil || aws.ToString(resumed.TokenValue) == token || aws.ToString(resumed.StreamUrl) != aws.ToString(out.StreamUrl) {
		t.Fatalf("ResumeSession = %+v, %v; want a new token and the same URL", resumed, err)
	}
	if cs, _ := e.sim.LookupSession(sid); cs.Token != aws.ToString(resumed.TokenValue) {
		t.Errorf("LookupSession token = %q, want the resumed one", cs.Token)
	}

	active, err := c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
	if err != nil || len(active.Sessions) != 1 {
		t.Fatalf("DescribeSessions(Active) = %+v, %v", active, err)
	}
	s := active.Sessions[0]
	if aws.ToString(s.SessionId) != sid || aws.ToString(s.Owner) != owner || aws.ToString(s.Target) != ec2sim.DemoWeb1 ||
		s.Status != ssmtypes.SessionStatusConnected || aws.ToString(s.DocumentName) != "AWS-StartSSHSession" ||
		aws.ToString(s.Reason) != reason || s.StartDate == nil || s.EndDate != nil {
		t.Errorf("session = %+v", s)
	}

	e.clock.add(time.Minute)
	for range 2 { // idempotent
		term, err := e.ssm(latchServer).TerminateSession(t.Context(), &ssm.TerminateSessionInput{SessionId: aws.String(sid)})
		if err != nil || aws.ToString(term.SessionId) != sid {
			t.Fatalf("TerminateSession = %+v, %v", term, err)
		}
	}
	if got := e.channel.got(); len(got) != 1 || got[0] != sid {
		t.Errorf("DataChannel.Terminate calls = %v, want one for %s", got, sid)
	}
	if _, ok := e.sim.LookupSession(sid); ok {
		t.Error("LookupSession found a terminated session")
	}
	hist, err := c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateHistory})
	if err != nil || len(hist.Sessions) != 1 || hist.Sessions[0].Status != ssmtypes.SessionStatusTerminated ||
		hist.Sessions[0].EndDate == nil || hist.Sessions[0].EndDate.Unix() != e.clock.now().Unix() {
		t.Fatalf("DescribeSessions(History) = %+v, %v", hist, err)
	}
	_, err = c.ResumeSession(t.Context(), &ssm.ResumeSessionInput{SessionId: aws.String(sid)})
	wantAs[*ssmtypes.DoesNotExistException](t, err)
	if _, err := c.TerminateSession(t.Context(), &ssm.TerminateSessionInput{SessionId: aws.String("nobody-0123456789abcdef0")}); err != nil {
		t.Errorf("TerminateSession(unknown) = %v, want success as SSM answers", err)
	}
	if n := e.sim.Calls("TerminateSession"); n != 3 {
		t.Errorf("Calls(TerminateSession) = %d, want 3", n)
	}
}

func TestSSM_StartSessionErrors(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	if err := e.sim.SetAgent("us-east-1", ec2sim.DemoWeb2, ec2sim.Agent{PingStatus: ec2sim.PingConnectionLost}); err != nil {
		t.Fatal(err)
	}
	c := e.ssm(latchServer)
	tests := []struct {
		name  string
		in    ssm.StartSessionInput
		check func(*testing.T, error)
	}{
		{"agent offline", ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb2)}, wantAs[*ssmtypes.TargetNotConnected]},
		{"unknown instance", ssm.StartSessionInput{Target: aws.String("i-0123456789abcdef0")}, wantAs[*ssmtypes.TargetNotConnected]},
		{"unknown document", ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb1), DocumentName: aws.String("AWS-Nope")}, wantAs[*ssmtypes.InvalidDocument]},
		{"bad port", ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb1), DocumentName: aws.String("AWS-StartPortForwardingSession"),
			Parameters: map[string][]string{"portNumber": {"70000"}}}, wantAs[*ssmtypes.InvalidParameters]},
		{"unknown parameter", ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb1), DocumentName: aws.String("AWS-StartSSHSession"),
			Parameters: map[string][]string{"colour": {"red"}}}, wantAs[*ssmtypes.InvalidParameters]},
		{"missing host", ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb1), DocumentName: aws.String("AWS-StartPortForwardingSessionToRemoteHost")}, wantAs[*ssmtypes.InvalidParameters]},
		{"long reason", ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb1), Reason: aws.String(strings.Repeat("x", 257))},
			func(t *testing.T, err error) { wantCode(t, err, ec2sim.CodeSSMValidation) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.StartSession(t.Context(), &tt.in)
			tt.check(t, err)
		})
	}
	if err := e.sim.SetAgent("us-east-1", ec2sim.DemoWeb2, ec2sim.Agent{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.StartSession(t.Context(), &ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb2)})
	wantAs[*ssmtypes.TargetNotConnected](t, err)
	if !strings.Contains(err.Error(), ec2sim.DemoWeb2+" is not connected") {
		t.Errorf("err = %v", err)
	}
	if len(e.sim.Sessions("")) != 0 {
		t.Errorf("Sessions = %v, want none after failures", e.sim.Sessions(""))
	}
}

func TestSSM_Authentication(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	in := &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive}
	_, err := e.ssm(ec2sim.Identity{AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: "x"}).DescribeSessions(t.Context(), in)
	wantCode(t, err, "UnrecognizedClientException")
	wrong := latchServer
	wrong.SecretAccessKey = "wrong"
	_, err = e.ssm(wrong).DescribeSessions(t.Context(), in)
	wantCode(t, err, "InvalidSignatureException")
	id := e.requester(t)
	id.SessionToken = "forged"
	_, err = e.ssm(id).DescribeSessions(t.Context(), in)
	wantCode(t, err, "UnrecognizedClientException")
}

func TestSSM_DescribeSessionsPagingAndFilters(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	c := e.ssm(latchServer)
	var ids []string
	for i, target := range []string{ec2sim.DemoWeb1, ec2sim.DemoWeb2, ec2sim.DemoWeb1, ec2sim.DemoDB1, ec2sim.DemoWeb1} {
		out := e.start(t, c, target)
		ids = append(ids, aws.ToString(out.SessionId))
		if !strings.HasPrefix(ids[i], "latch-server-") {
			t.Errorf("SessionId = %q, want the IAM user's name first", ids[i])
		}
		e.clock.add(time.Second)
	}
	var seen []string
	in := &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive, MaxResults: aws.Int32(2)}
	for pages := 0; ; pages++ {
		out, err := c.DescribeSessions(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range out.Sessions {
			seen = append(seen, aws.ToString(s.SessionId))
		}
		if out.NextToken == nil {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		in.NextToken = out.NextToken
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]} // newest first
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("paged IDs = %v, want %v", seen, want)
	}

	count := func(filters ...ssmtypes.SessionFilter) int {
		t.Helper()
		out, err := c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive, Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Sessions)
	}
	f := func(k ssmtypes.SessionFilterKey, v string) ssmtypes.SessionFilter {
		return ssmtypes.SessionFilter{Key: k, Value: aws.String(v)}
	}
	if n := count(f(ssmtypes.SessionFilterKeyTargetId, ec2sim.DemoWeb1)); n != 3 {
		t.Errorf("Target filter: %d sessions, want 3", n)
	}
	if n := count(f(ssmtypes.SessionFilterKeySessionId, ids[1])); n != 1 {
		t.Errorf("SessionId filter: %d sessions, want 1", n)
	}
	if n := count(f(ssmtypes.SessionFilterKeyOwner, latchServer.ARN), f(ssmtypes.SessionFilterKeyStatus, "Connected")); n != 5 {
		t.Errorf("Owner and Status filters: %d sessions, want 5", n)
	}
	after := e.clock.now().Add(-2 * time.Second).Format(time.RFC3339)
	if n := count(f(ssmtypes.SessionFilterKeyInvokedAfter, after)); n != 2 {
		t.Errorf("InvokedAfter filter: %d sessions, want 2", n)
	}

	_, err := c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive, Filters: []ssmtypes.SessionFilter{f("Colour", "red")}})
	wantAs[*ssmtypes.InvalidFilterKey](t, err)
	_, err = c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateHistory, NextToken: in.NextToken})
	wantAs[*ssmtypes.InvalidNextToken](t, err)
	_, err = c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: "Bogus"})
	wantCode(t, err, ec2sim.CodeSSMValidation)
	_, err = c.DescribeSessions(t.Context(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive, MaxResults: aws.Int32(201)})
	wantCode(t, err, ec2sim.CodeSSMValidation)
}

func TestSSM_DescribeInstanceInformation(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	if err := e.sim.SetAgent("us-east-1", ec2sim.DemoWeb2, ec2sim.Agent{PingStatus: ec2sim.PingConnectionLost}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetAgent("us-east-1", "i-0123456789abcdef0", ec2sim.Agent{}); err == nil {
		t.Error("SetAgent on an unknown instance succeeded")
	}
	c := e.ssm(latchServer)
	list := func(in *ssm.DescribeInstanceInformationInput) map[string]ssmtypes.InstanceInformation {
		t.Helper()
		out, err := c.DescribeInstanceInformation(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]ssmtypes.InstanceInformation{}
		for _, i := range out.InstanceInformationList {
			m[aws.ToString(i.InstanceId)] = i
		}
		return m
	}
	all := list(&ssm.DescribeInstanceInformationInput{})
	if len(all) != 3 {
		t.Fatalf("managed nodes = %v, want the demo fleet's 3", all)
	}
	w1 := all[ec2sim.DemoWeb1]
	if w1.PingStatus != ssmtypes.PingStatusOnline || w1.PlatformType != ssmtypes.PlatformTypeLinux || w1.ResourceType != "EC2Instance" ||
		aws.ToString(w1.AgentVersion) != ec2sim.DefaultAgentVersion || !aws.ToBool(w1.IsLatestVersion) ||
		w1.LastPingDateTime.Unix() != e.clock.now().Unix() || aws.ToString(w1.IPAddress) != "10.0.1.10" {
		t.Errorf("web-1 = %+v", w1)
	}
	if all[ec2sim.DemoWeb2].PingStatus != ssmtypes.PingStatusConnectionLost {
		t.Errorf("web-2 PingStatus = %s, want ConnectionLost", all[ec2sim.DemoWeb2].PingStatus)
	}
	online := list(&ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("PingStatus"), Values: []string{"Online"}}}})
	if _, ok := online[ec2sim.DemoWeb2]; ok || len(online) != 2 {
		t.Errorf("Online = %v, want web-1 and db-1", online)
	}
	byTag := list(&ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("tag:env"), Values: []string{"prod"}}}})
	if _, ok := byTag[ec2sim.DemoDB1]; !ok || len(byTag) != 1 {
		t.Errorf("tag:env=prod = %v, want db-1", byTag)
	}
	legacy := list(&ssm.DescribeInstanceInformationInput{InstanceInformationFilterList: []ssmtypes.InstanceInformationFilter{
		{Key: ssmtypes.InstanceInformationFilterKeyInstanceIds, ValueSet: []string{ec2sim.DemoWeb2}},
	}})
	if _, ok := legacy[ec2sim.DemoWeb2]; !ok || len(legacy) != 1 {
		t.Errorf("InstanceIds = %v, want web-2", legacy)
	}

	out, err := c.DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5)})
	if err != nil || out.NextToken != nil || len(out.InstanceInformationList) != 3 {
		t.Errorf("MaxResults 5 = %+v, %v", out, err)
	}
	_, err = c.DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(4)})
	wantCode(t, err, ec2sim.CodeSSMValidation)
	_, err = c.DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("Colour"), Values: []string{"red"}}}})
	wantAs[*ssmtypes.InvalidFilterKey](t, err)
	_, err = c.DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("PingStatus"), Values: []string{"Asleep"}}}})
	wantAs[*ssmtypes.InvalidInstanceInformationFilterValue](t, err)
	_, err = c.DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{"web-1"}}}})
	wantAs[*ssmtypes.InvalidInstanceId](t, err)
}

func TestSSM_CloudTrailRecordsSessionsWithSourceIdentity(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	id := e.requester(t)
	out := e.start(t, e.ssm(id), ec2sim.DemoWeb1)
	if _, err := e.ssm(id).TerminateSession(t.Context(), &ssm.TerminateSessionInput{SessionId: out.SessionId}); err != nil {
		t.Fatal(err)
	}
	ct := trailAs(t, e.url, latchServer)
	for _, tt := range []struct{ name, source string }{
		{"StartSession", "ssm.amazonaws.com"}, {"TerminateSession", "ssm.amazonaws.com"}, {"AssumeRole", "sts.amazonaws.com"},
	} {
		evs := lookup(t, ct, cttypes.LookupAttributeKeyEventName, tt.name)
		if len(evs) != 1 || aws.ToString(evs[0].EventSource) != tt.source {
			t.Fatalf("%s events = %+v", tt.name, evs)
		}
		raw := aws.ToString(evs[0].CloudTrailEvent)
		if strings.Contains(raw, aws.ToString(out.TokenValue)) || strings.Contains(raw, id.SecretAccessKey) || strings.Contains(raw, id.SessionToken) {
			t.Errorf("%s record holds a secret: %s", tt.name, raw)
		}
		var rec struct {
			UserIdentity struct {
				Type           string
				SessionContext *struct {
					SourceIdentity string `json:"sourceIdentity"`
				} `json:"sessionContext"`
			} `json:"userIdentity"`
			RequestParameters map[string]any `json:"requestParameters"`
			ResponseElements  map[string]any `json:"responseElements"`
		}
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatal(err)
		}
		switch tt.name {
		case "StartSession":
			if rec.UserIdentity.Type != "AssumedRole" || rec.UserIdentity.SessionContext == nil ||
				rec.UserIdentity.SessionContext.SourceIdentity != "alice@example.com" ||
				rec.RequestParameters["target"] != ec2sim.DemoWeb1 || rec.ResponseElements["sessionId"] != aws.ToString(out.SessionId) {
				t.Errorf("StartSession record = %s", raw)
			}
			if aws.ToString(evs[0].Username) != "alice_example.com" {
				t.Errorf("Username = %q, want the role session name", aws.ToString(evs[0].Username))
			}
		case "AssumeRole":
			if rec.UserIdentity.Type != "IAMUser" || rec.RequestParameters["sourceIdentity"] != "alice@example.com" {
				t.Errorf("AssumeRole record = %s", raw)
			}
		}
	}
}

func TestSSM_DataChannelSeam(t *testing.T) {
	pipeDial := func(ctx context.Context, region, id string, port int) (net.Conn, error) {
		a, b := net.Pipe()
		go func() { _ = b.Close() }()
		return a, nil
	}
	e := newSSMEnv(t, ec2sim.Options{Dial: pipeDial})
	resp, err := http.Get(e.url + "/v1/data-channel/some-session")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("data channel status = %d, want the handler's 200", resp.StatusCode)
	}
	if conn, err := e.sim.DialTarget(t.Context(), "us-east-1", ec2sim.DemoWeb1, 22); err != nil {
		t.Errorf("DialTarget(web-1) = %v", err)
	} else {
		_ = conn.Close()
	}
	if err := e.sim.SetAgent("us-east-1", ec2sim.DemoWeb1, ec2sim.Agent{PingStatus: ec2sim.PingInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.DialTarget(t.Context(), "us-east-1", ec2sim.DemoWeb1, 22); err == nil {
		t.Error("DialTarget reached an instance whose agent is inactive")
	}
	if _, err := e.sim.DialTarget(t.Context(), "us-east-1", "i-0123456789abcdef0", 22); err == nil {
		t.Error("DialTarget reached an unknown instance")
	}

	out := e.start(t, e.ssm(latchServer), ec2sim.DemoWeb2)
	e.sim.EndSession(aws.ToString(out.SessionId))
	if s := e.sim.Sessions("us-east-1"); len(s) != 1 || s[0].Status != "Terminated" || s[0].EndDate.IsZero() {
		t.Errorf("after EndSession, Sessions = %+v", s)
	}
	if got := e.channel.got(); len(got) != 0 {
		t.Errorf("EndSession called DataChannel.Terminate: %v", got)
	}

	bare := ec2sim.New(ec2sim.Options{})
	resp, err = http.Get(mustStart(t, bare) + "/v1/data-channel/x")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	// Without Options.DataChannel the simulator's own agent answers; a
	// plain GET is no WebSocket handshake.
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("without a DataChannel, a plain GET: status = %d, want 400 from the built-in data channel", resp.StatusCode)
	}
	if bare.LoadFleet(ec2sim.DemoFleet()) != nil {
		t.Fatal("LoadFleet failed")
	}
	if _, err := bare.DialTarget(t.Context(), "us-east-1", ec2sim.DemoWeb1, 22); err == nil {
		t.Error("DialTarget without Options.Dial succeeded")
	}
}

// The universal target ssm:terminateSession ends a session at the
// schedule's time as the role's session: counted, recorded in CloudTrail,
// throttled by injected faults and retried like the EC2 targets.
func TestFire_TerminateSessionTarget(t *testing.T) {
	e := newSSMEnv(t, ec2sim.Options{})
	sid := aws.ToString(e.start(t, e.ssm(e.requester(t)), ec2sim.DemoWeb1).SessionId)
	sched := schedClient(t, e.url, "us-east-1")
	at := e.clock.now().Add(time.Minute).Truncate(time.Second)
	target := &stypes.Target{Arn: aws.String("arn:aws:scheduler:::aws-sdk:ssm:terminateSession"), RoleArn: aws.String(backstopRole),
		Input: aws.String(`{"SessionId":"` + sid + `"}`)}
	if _, err := sched.CreateSchedule(t.Context(), oneTime("latch-session-0123456789abcdef", at, target)); err != nil {
		t.Fatal(err)
	}
	e.sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Actions: []string{"TerminateSession"}, Limit: 1})
	e.clock.add(time.Minute)
	runs := e.sim.FireDueSchedules()
	if _, ok := e.sim.LookupSession(sid); len(runs) != 1 || targetCode(runs[0].Err) != ec2sim.CodeSSMThrottling || runs[0].GaveUp || !ok {
		t.Fatalf("throttled: runs = %+v, want ThrottlingException, to be retried, the session untouched", runs)
	}
	e.clock.add(time.Second)
	runs = e.sim.FireDueSchedules()
	if _, ok := e.sim.LookupSession(sid); len(runs) != 1 || runs[0].Err != nil || runs[0].Attempt != 2 || ok {
		t.Fatalf("retry: runs = %+v, want attempt 2 to terminate the session", runs)
	}
	if got := e.channel.got(); len(got) != 1 || got[0] != sid {
		t.Errorf("DataChannel.Terminate calls = %v, want one for %s", got, sid)
	}
	if n := e.sim.Calls("TerminateSession"); n != 2 {
		t.Errorf("Calls(TerminateSession) = %d, want 2", n)
	}
	evs := lookup(t, trailAs(t, e.url, latchServer), cttypes.LookupAttributeKeyEventName, "TerminateSession")
	if len(evs) != 1 || !strings.Contains(aws.ToString(evs[0].CloudTrailEvent), `"userAgent":"scheduler.amazonaws.com"`) ||
		!strings.Contains(aws.ToString(evs[0].CloudTrailEvent), ":assumed-role/latch-backstop/") ||
		!strings.Contains(aws.ToString(evs[0].CloudTrailEvent), sid) {
		t.Errorf("TerminateSession events = %+v, want one by the scheduler role's session", evs)
	}

	for _, tt := range []struct{ name, input, code, want string }{
		{"unknown member", `{"Id":"x"}`, "", `unknown field "Id"`},
		{"no session ID", `{}`, ec2sim.CodeSSMValidation, "sessionId"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := *target
			bad.Input = aws.String(tt.input)
			bad.RetryPolicy = &stypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(0)}
			at := e.clock.now().Add(time.Minute).Truncate(time.Second)
			if _, err := sched.CreateSchedule(t.Context(), oneTime("bad-"+strings.ReplaceAll(tt.name, " ", "-"), at, &bad)); err != nil {
				t.Fatal(err)
			}
			e.clock.add(time.Minute)
			runs := e.sim.FireDueSchedules()
			if len(runs) != 1 || runs[0].Err == nil || targetCode(runs[0].Err) != tt.code || !strings.Contains(runs[0].Err.Error(), tt.want) || !runs[0].GaveUp {
				t.Fatalf("runs = %+v, want one failed with code %q mentioning %q, given up", runs, tt.code, tt.want)
			}
		})
	}
}
