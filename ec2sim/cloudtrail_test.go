package ec2sim_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/latchdev/latch/ec2sim"
)

// ctRecord is the part of a CloudTrail record the tests check.
type ctRecord struct {
	EventVersion, EventTime, EventSource, EventName, AWSRegion string
	SourceIPAddress, UserAgent, ErrorCode, ErrorMessage        string
	RequestID, EventID, EventType, RecipientAccountID          string
	ReadOnly, ManagementEvent                                  bool
	UserIdentity                                               struct {
		Type, PrincipalID, ARN, AccountID, AccessKeyID, UserName string
		SessionContext                                           *struct {
			SessionIssuer struct{ Type, PrincipalID, ARN, AccountID, UserName string }
		}
	}
	RequestParameters, ResponseElements json.RawMessage
}

// ctSim serves a demo-fleet simulator that knows alice and deployer.
func ctSim(t *testing.T, opts ec2sim.Options) (*ec2sim.Server, string) {
	t.Helper()
	sim := ec2sim.New(opts)
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []ec2sim.Identity{alice, deployer} {
		if err := sim.AddIdentity(id); err != nil {
			t.Fatal(err)
		}
	}
	return sim, mustStart(t, sim)
}

func ec2As(t *testing.T, url string, id ec2sim.Identity) *ec2.Client {
	t.Helper()
	c := newClient(t, url, "us-east-1")
	return ec2.New(c.Options(), func(o *ec2.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken)
	})
}

// trailAs is a CloudTrail client for id, with newClient's workaround for
// smithy-go's body race (see hideWriterTo), which big pages of events
// would otherwise meet.
func trailAs(t *testing.T, url string, id ec2sim.Identity) *cloudtrail.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return cloudtrail.NewFromConfig(aws.Config{
		HTTPClient:       &http.Client{Transport: hideWriterTo{tr}},
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken),
		BaseEndpoint:     aws.String(url),
		RetryMaxAttempts: 1,
	})
}

// lookup returns the events whose attribute key is value, newest first.
func lookup(t *testing.T, c *cloudtrail.Client, key cttypes.LookupAttributeKey, value string) []cttypes.Event {
	t.Helper()
	in := &cloudtrail.LookupEventsInput{}
	if key != "" {
		in.LookupAttributes = []cttypes.LookupAttribute{{AttributeKey: key, AttributeValue: aws.String(value)}}
	}
	var events []cttypes.Event
	for p := cloudtrail.NewLookupEventsPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("LookupEvents(%s=%s) = %v", key, value, err)
		}
		events = append(events, out.Events...)
	}
	return events
}

func record(t *testing.T, ev cttypes.Event) ctRecord {
	t.Helper()
	var rec ctRecord
	if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil {
		t.Fatalf("CloudTrailEvent is not JSON: %v\n%s", err, aws.ToString(ev.CloudTrailEvent))
	}
	return rec
}

// sameJSON fails unless got and want hold the same JSON value.
func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s =\n%s\nwant\n%s", what, got, want)
	}
}

func requestID(t *testing.T, md middleware.Metadata) string {
	t.Helper()
	id, ok := awsmiddleware.GetRequestIDMetadata(md)
	if !ok {
		t.Fatal("no request ID")
	}
	return id
}

func resourceNames(ev cttypes.Event) []string {
	var names []string
	for _, r := range ev.Resources {
		names = append(names, aws.ToString(r.ResourceType)+" "+aws.ToString(r.ResourceName))
	}
	return names
}

func TestCloudTrail_AuthorizeThenRevoke(t *testing.T) {
	_, url := ctSim(t, ec2sim.Options{})
	group := ec2sim.DemoWebLatchGroup
	auth, err := ec2As(t, url, alice).AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:           aws.String(group),
		IpPermissions:     []types.IpPermission{ssh("203.0.113.7/32")},
		TagSpecifications: tagSpec("latch:grant-id", "g1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ruleID := aws.ToString(auth.SecurityGroupRules[0].SecurityGroupRuleId)
	revoke, err := ec2As(t, url, deployer).RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(group), SecurityGroupRuleIds: []string{ruleID},
	})
	if err != nil {
		t.Fatal(err)
	}
	trail := trailAs(t, url, alice)

	authorized := lookup(t, trail, cttypes.LookupAttributeKeyEventName, "AuthorizeSecurityGroupIngress")
	revoked := lookup(t, trail, cttypes.LookupAttributeKeyEventName, "RevokeSecurityGroupIngress")
	if len(authorized) != 1 || len(revoked) != 1 {
		t.Fatalf("found %d authorize and %d revoke events, want 1 each", len(authorized), len(revoked))
	}
	wantResources := []string{"AWS::EC2::SecurityGroup " + group, "AWS::EC2::SecurityGroupRule " + ruleID}
	for _, ev := range []cttypes.Event{authorized[0], revoked[0]} {
		if got := resourceNames(ev); !slices.Equal(got, wantResources) {
			t.Errorf("%s Resources = %v, want %v", aws.ToString(ev.EventName), got, wantResources)
		}
		if aws.ToString(ev.EventSource) != "ec2.amazonaws.com" || aws.ToString(ev.ReadOnly) != "false" {
			t.Errorf("EventSource %q ReadOnly %q", aws.ToString(ev.EventSource), aws.ToString(ev.ReadOnly))
		}
	}

	ev, rec := authorized[0], record(t, authorized[0])
	if aws.ToString(ev.Username) != "alice" || aws.ToString(ev.AccessKeyId) != alice.AccessKeyID {
		t.Errorf("Username %q AccessKeyId %q, want alice's", aws.ToString(ev.Username), aws.ToString(ev.AccessKeyId))
	}
	id := rec.UserIdentity
	if id.Type != "IAMUser" || id.ARN != alice.ARN || id.AccountID != "111122223333" ||
		id.AccessKeyID != alice.AccessKeyID || id.UserName != "alice" || !strings.HasPrefix(id.PrincipalID, "AIDA") {
		t.Errorf("userIdentity = %+v", id)
	}
	if rec.EventID != aws.ToString(ev.EventId) || rec.RequestID != requestID(t, auth.ResultMetadata) ||
		rec.EventSource != "ec2.amazonaws.com" || rec.AWSRegion != "us-east-1" || rec.ReadOnly ||
		rec.EventType != "AwsApiCall" || !rec.ManagementEvent || rec.RecipientAccountID != ec2sim.DefaultAccountID ||
		rec.SourceIPAddress != "127.0.0.1" || !strings.Contains(rec.UserAgent, "aws-sdk-go-v2") || rec.ErrorCode != "" {
		t.Errorf("record = %+v", rec)
	}
	if at, err := time.Parse(time.RFC3339, rec.EventTime); err != nil || !at.Equal(aws.ToTime(ev.EventTime)) {
		t.Errorf("eventTime %q, EventTime %v", rec.EventTime, ev.EventTime)
	}
	sameJSON(t, "authorize requestParameters", rec.RequestParameters, `{
		"groupId": "`+group+`",
		"ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "groups": {},
			"ipRanges": {"items": [{"cidrIp": "203.0.113.7/32", "description": "ssh"}]},
			"ipv6Ranges": {}, "prefixListIds": {}}]},
		"tagSpecificationSet": {"items": [{"resourceType": "security-group-rule",
			"tags": [{"key": "latch:grant-id", "value": "g1"}]}]}}`)
	sameJSON(t, "authorize responseElements", rec.ResponseElements, `{
		"requestId": "`+rec.RequestID+`", "_return": true,
		"securityGroupRuleSet": {"items": [{"groupOwnerId": "123456789012", "groupId": "`+group+`",
			"securityGroupRuleId": "`+ruleID+`", "isEgress": false, "ipProtocol": "tcp",
			"fromPort": 22, "toPort": 22, "cidrIpv4": "203.0.113.7/32", "description": "ssh",
			"tagSet": {"items": [{"key": "latch:grant-id", "value": "g1"}]}}]}}`)

	ev, rec = revoked[0], record(t, revoked[0])
	if aws.ToString(ev.Username) != "ci-run-7" {
		t.Errorf("Username = %q, want the session name ci-run-7", aws.ToString(ev.Username))
	}
	id = rec.UserIdentity
	if id.Type != "AssumedRole" || id.ARN != deployer.ARN || id.PrincipalID != deployer.UserID || id.SessionContext == nil ||
		id.SessionContext.SessionIssuer.ARN != "arn:aws:iam::111122223333:role/deploy" ||
		id.SessionContext.SessionIssuer.PrincipalID != "AROAEXAMPLEDEPLOY01" {
		t.Errorf("userIdentity = %+v (session %+v)", id, id.SessionContext)
	}
	sameJSON(t, "revoke requestParameters", rec.RequestParameters, `{
		"groupId": "`+group+`", "securityGroupRuleIds": {"items": [{"securityGroupRuleId": "`+ruleID+`"}]}}`)
	sameJSON(t, "revoke responseElements", rec.ResponseElements, `{
		"requestId": "`+requestID(t, revoke.ResultMetadata)+`", "_return": true,
		"revokedSecurityGroupRuleSet": {"items": [{"securityGroupRuleId": "`+ruleID+`", "groupId": "`+group+`",
			"isEgress": false, "ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
			"cidrIpv4": "203.0.113.7/32", "description": "ssh"}]}}`)

	for _, name := range []string{ruleID, group} {
		got := lookup(t, trail, cttypes.LookupAttributeKeyResourceName, name)
		var names []string
		for _, ev := range got {
			names = append(names, aws.ToString(ev.EventName))
		}
		if want := []string{"RevokeSecurityGroupIngress", "AuthorizeSecurityGroupIngress"}; !slices.Equal(names, want) {
			t.Errorf("ResourceName %s finds %v, want %v (newest first)", name, names, want)
		}
	}
}

// testClock is a clock a test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestCloudTrail_Delay(t *testing.T) {
	// Near real time, so that alice's signatures stay in their window.
	start := time.Now()
	clock := &testClock{now: start}
	sim, url := ctSim(t, ec2sim.Options{Now: clock.Now, CloudTrailDelay: 5 * time.Minute})
	mustAuthorize(t, ec2As(t, url, alice), ec2sim.DemoWebLatchGroup, ssh("203.0.113.7/32"))
	trail := trailAs(t, url, alice)
	for _, step := range []struct {
		after time.Duration
		want  int
	}{{0, 0}, {5*time.Minute - time.Second, 0}, {5 * time.Minute, 1}} {
		clock.Set(start.Add(step.after))
		if got := len(lookup(t, trail, "", "")); got != step.want {
			t.Fatalf("%v after the call: %d events visible, want %d", step.after, got, step.want)
		}
	}
	sim.SetCloudTrailDelay(0)
	mustAuthorize(t, ec2As(t, url, alice), ec2sim.DemoWebLatchGroup, ssh("203.0.113.8/32"))
	if got := len(lookup(t, trail, "", "")); got != 2 {
		t.Errorf("with no delay: %d events visible, want 2", got)
	}
}

func TestCloudTrail_Faults(t *testing.T) {
	sim, url := ctSim(t, ec2sim.Options{})
	client, trail := ec2As(t, url, alice), trailAs(t, url, alice)
	authorize := "AuthorizeSecurityGroupIngress"

	// Throttled, then retried by the SDK: one call applied, one event.
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Actions: []string{authorize}, Limit: 1})
	mustAuthorize(t, client, ec2sim.DemoWebLatchGroup, ssh("203.0.113.7/32"))
	if calls, events := sim.Calls(authorize), len(lookup(t, trail, "", "")); calls != 2 || events != 1 {
		t.Fatalf("throttled then retried: %d calls and %d events, want 2 and 1", calls, events)
	}

	// The response is lost after the rule was added: the event is there,
	// and so is the SDK's retry, refused as a duplicate.
	sim.SetFaults(ec2sim.Faults{LostResponseRate: 1, Actions: []string{authorize}, Limit: 1})
	_, err := client.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(ec2sim.DemoWebLatchGroup), IpPermissions: []types.IpPermission{ssh("203.0.113.8/32")},
	})
	wantCode(t, err, ec2sim.CodeInvalidPermissionDuplicate)
	events := lookup(t, trail, cttypes.LookupAttributeKeyEventName, authorize)
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	retry, lost := record(t, events[0]), record(t, events[1])
	if lost.ErrorCode != "" || !strings.Contains(string(lost.ResponseElements), `"_return":true`) {
		t.Errorf("lost response recorded as %s %s", lost.ErrorCode, lost.ResponseElements)
	}
	if retry.ErrorCode != "Client.InvalidPermission.Duplicate" || !strings.Contains(retry.ErrorMessage, "already exists") ||
		string(retry.ResponseElements) != "null" || !strings.Contains(string(retry.RequestParameters), "203.0.113.8/32") {
		t.Errorf("duplicate recorded as %s %q, responseElements %s, requestParameters %s",
			retry.ErrorCode, retry.ErrorMessage, retry.ResponseElements, retry.RequestParameters)
	}

	// Throttled for good: nothing applied, nothing recorded.
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Actions: []string{authorize}})
	_, err = client.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(ec2sim.DemoWebLatchGroup), IpPermissions: []types.IpPermission{ssh("203.0.113.9/32")},
	})
	wantCode(t, err, ec2sim.CodeRequestLimitExceeded)
	if got := len(lookup(t, trail, "", "")); got != 3 {
		t.Errorf("after throttled calls: %d events, want still 3", got)
	}
}

func TestCloudTrail_GroupsAndTags(t *testing.T) {
	_, url := ctSim(t, ec2sim.Options{})
	client, trail := ec2As(t, url, alice), trailAs(t, url, alice)
	created, err := client.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("ops"), Description: aws.String("ops access"), VpcId: aws.String(ec2sim.DemoVPC),
	})
	if err != nil {
		t.Fatal(err)
	}
	group := aws.ToString(created.GroupId)
	tags := []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}
	if _, err := client.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{group, ec2sim.DemoWeb1}, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{group}, Tags: []types.Tag{{Key: aws.String("team")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteSecurityGroup(t.Context(), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(group)}); err != nil {
		t.Fatal(err)
	}

	events := lookup(t, trail, cttypes.LookupAttributeKeyResourceName, group)
	var names []string
	for _, ev := range events {
		names = append(names, aws.ToString(ev.EventName))
	}
	if want := []string{"DeleteSecurityGroup", "DeleteTags", "CreateTags", "CreateSecurityGroup"}; !slices.Equal(names, want) {
		t.Fatalf("events for %s: %v, want %v", group, names, want)
	}
	rec := record(t, events[3])
	sameJSON(t, "CreateSecurityGroup requestParameters", rec.RequestParameters,
		`{"groupName": "ops", "groupDescription": "ops access", "vpcId": "`+ec2sim.DemoVPC+`"}`)
	sameJSON(t, "CreateSecurityGroup responseElements", rec.ResponseElements,
		`{"requestId": "`+rec.RequestID+`", "_return": true, "groupId": "`+group+`"}`)
	rec = record(t, events[2])
	sameJSON(t, "CreateTags requestParameters", rec.RequestParameters, `{
		"resourcesSet": {"items": [{"resourceId": "`+group+`"}, {"resourceId": "`+ec2sim.DemoWeb1+`"}]},
		"tagSet": {"items": [{"key": "team", "value": "ops"}]}}`)
	if got, want := resourceNames(events[2]), []string{"AWS::EC2::SecurityGroup " + group, "AWS::EC2::Instance " + ec2sim.DemoWeb1}; !slices.Equal(got, want) {
		t.Errorf("CreateTags Resources = %v, want %v", got, want)
	}
	sameJSON(t, "DeleteTags requestParameters", record(t, events[1]).RequestParameters,
		`{"resourcesSet": {"items": [{"resourceId": "`+group+`"}]}, "tagSet": {"items": [{"key": "team"}]}}`)
	sameJSON(t, "DeleteSecurityGroup requestParameters", record(t, events[0]).RequestParameters, `{"groupId": "`+group+`"}`)
	if got := len(lookup(t, trail, cttypes.LookupAttributeKeyResourceType, "AWS::EC2::Instance")); got != 1 {
		t.Errorf("ResourceType AWS::EC2::Instance finds %d events, want 1", got)
	}
}
