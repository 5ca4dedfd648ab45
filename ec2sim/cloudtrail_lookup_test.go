package ec2sim_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

// tagWeb1 tags web-1 n times, seq=0 … seq=n-1, one event each.
func tagWeb1(t *testing.T, c *ec2.Client, n int) {
	t.Helper()
	for i := range n {
		_, err := c.CreateTags(t.Context(), &ec2.CreateTagsInput{
			Resources: []string{ec2sim.DemoWeb1},
			Tags:      []types.Tag{{Key: aws.String("seq"), Value: aws.String(fmt.Sprint(i))}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCloudTrail_Paging(t *testing.T) {
	_, url := ctSim(t, ec2sim.Options{})
	const n = 120
	tagWeb1(t, ec2As(t, url, alice), n)
	trail := trailAs(t, url, alice)
	byName := []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateTags")}}

	for _, max := range []int32{0, 7, 50} { // 0: the default, 50
		in := &cloudtrail.LookupEventsInput{LookupAttributes: byName}
		pageSize := int32(50)
		if max > 0 {
			in.MaxResults, pageSize = aws.Int32(max), max
		}
		var seqs []string
		pages := 0
		for p := cloudtrail.NewLookupEventsPaginator(trail, in); p.HasMorePages(); pages++ {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("MaxResults %d, page %d: %v", max, pages+1, err)
			}
			if len(out.Events) > int(pageSize) {
				t.Fatalf("MaxResults %d: page of %d events", max, len(out.Events))
			}
			for _, ev := range out.Events {
				params := string(record(t, ev).RequestParameters)
				_, after, _ := strings.Cut(params, `"value":"`)
				seq, _, _ := strings.Cut(after, `"`)
				seqs = append(seqs, seq)
			}
		}
		if want := (n + int(pageSize) - 1) / int(pageSize); pages != want {
			t.Errorf("MaxResults %d: %d pages, want %d", max, pages, want)
		}
		if len(seqs) != n {
			t.Fatalf("MaxResults %d: %d events, want %d", max, len(seqs), n)
		}
		for i, seq := range seqs {
			if want := fmt.Sprint(n - 1 - i); seq != want {
				t.Fatalf("MaxResults %d: event %d is seq=%s, want seq=%s (newest first, each once)", max, i, seq, want)
			}
		}
	}

	// A token is good only with the parameters that earned it.
	out, err := trail.LookupEvents(t.Context(), &cloudtrail.LookupEventsInput{LookupAttributes: byName, MaxResults: aws.Int32(5)})
	if err != nil || out.NextToken == nil {
		t.Fatalf("LookupEvents = %v, NextToken %v", err, out.NextToken)
	}
	_, err = trail.LookupEvents(t.Context(), &cloudtrail.LookupEventsInput{NextToken: out.NextToken})
	var badToken *cttypes.InvalidNextTokenException
	if !errors.As(err, &badToken) {
		t.Errorf("token with other parameters: err = %v, want InvalidNextTokenException", err)
	}
}

func TestCloudTrail_LookupAttributes(t *testing.T) {
	_, url := ctSim(t, ec2sim.Options{})
	anonymous := ec2sim.Identity{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}
	tagWeb1(t, ec2As(t, url, anonymous), 1)
	mustAuthorize(t, ec2As(t, url, alice), ec2sim.DemoWebLatchGroup, ssh("203.0.113.7/32"))
	trail := trailAs(t, url, anonymous) // an unknown key: accepted unchecked
	all := lookup(t, trail, "", "")
	if len(all) != 2 {
		t.Fatalf("%d events, want 2", len(all))
	}
	id := record(t, all[1]).UserIdentity
	if id.Type != "IAMUser" || id.ARN != "arn:aws:iam::123456789012:user/AKID" || id.AccessKeyID != "AKID" || id.AccountID != "123456789012" {
		t.Errorf("unknown key's userIdentity = %+v", id)
	}
	tests := []struct {
		key   cttypes.LookupAttributeKey
		value string
		want  int
	}{
		{cttypes.LookupAttributeKeyEventId, aws.ToString(all[0].EventId), 1},
		{cttypes.LookupAttributeKeyUsername, "alice", 1},
		{cttypes.LookupAttributeKeyUsername, "AKID", 1},
		{cttypes.LookupAttributeKeyAccessKeyId, alice.AccessKeyID, 1},
		{cttypes.LookupAttributeKeyEventSource, "ec2.amazonaws.com", 2},
		{cttypes.LookupAttributeKeyEventSource, "iam.amazonaws.com", 0},
		{cttypes.LookupAttributeKeyReadOnly, "false", 2},
		{cttypes.LookupAttributeKeyReadOnly, "true", 0},
		{cttypes.LookupAttributeKeyResourceType, "AWS::EC2::SecurityGroupRule", 1},
		{cttypes.LookupAttributeKeyResourceName, ec2sim.DemoWeb1, 1},
	}
	for _, tt := range tests {
		if got := len(lookup(t, trail, tt.key, tt.value)); got != tt.want {
			t.Errorf("%s=%s finds %d events, want %d", tt.key, tt.value, got, tt.want)
		}
	}

	// Events belong to the region they happened in, and so does the lookup.
	west := cloudtrail.New(trail.Options(), func(o *cloudtrail.Options) { o.Region = "eu-west-1" })
	if got := len(lookup(t, west, "", "")); got != 0 {
		t.Errorf("eu-west-1 has %d events, want 0", got)
	}

	// Time ranges are inclusive and to the second.
	at := aws.ToTime(all[0].EventTime)
	for _, tt := range []struct {
		start, end time.Time
		want       int
	}{
		{at, at, 2},
		{at.Add(time.Second), at.Add(time.Hour), 0},
		{at.Add(-time.Hour), at.Add(-time.Second), 0},
	} {
		out, err := trail.LookupEvents(t.Context(), &cloudtrail.LookupEventsInput{StartTime: aws.Time(tt.start), EndTime: aws.Time(tt.end)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != tt.want {
			t.Errorf("%v to %v: %d events, want %d", tt.start, tt.end, len(out.Events), tt.want)
		}
	}
}

func TestCloudTrail_LookupErrors(t *testing.T) {
	_, url := ctSim(t, ec2sim.Options{})
	trail := trailAs(t, url, alice)
	attr := func(k, v string) cttypes.LookupAttribute {
		return cttypes.LookupAttribute{AttributeKey: cttypes.LookupAttributeKey(k), AttributeValue: aws.String(v)}
	}
	now := time.Now()
	tests := []struct {
		name string
		in   cloudtrail.LookupEventsInput
		code string
	}{
		{"two attributes", cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{
			attr("EventName", "CreateTags"), attr("Username", "alice")}}, "InvalidLookupAttributesException"},
		{"unknown key", cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{attr("Colour", "red")}}, "InvalidLookupAttributesException"},
		{"empty value", cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{attr("EventName", "")}}, "InvalidLookupAttributesException"},
		{"ReadOnly not a boolean", cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{attr("ReadOnly", "maybe")}}, "InvalidLookupAttributesException"},
		{"start after end", cloudtrail.LookupEventsInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Minute))}, "InvalidTimeRangeException"},
		{"MaxResults 0", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}, "InvalidMaxResultsException"},
		{"MaxResults 51", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, "InvalidMaxResultsException"},
		{"forged token", cloudtrail.LookupEventsInput{NextToken: aws.String("not-a-token")}, "InvalidNextTokenException"},
		{"unknown category", cloudtrail.LookupEventsInput{EventCategory: "data"}, "InvalidEventCategoryException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := trail.LookupEvents(t.Context(), &tt.in)
			apiErr := wantAPIError(t, err, tt.code)
			if apiErr.ErrorMessage() == "" {
				t.Error("no message")
			}
		})
	}
	var timeRange *cttypes.InvalidTimeRangeException
	_, err := trail.LookupEvents(t.Context(), &tests[4].in)
	if !errors.As(err, &timeRange) {
		t.Errorf("err = %T, want the SDK's *types.InvalidTimeRangeException", err)
	}
}

func TestCloudTrail_Signatures(t *testing.T) {
	sim, url := ctSim(t, ec2sim.Options{})
	wrongSecret := alice
	wrongSecret.SecretAccessKey = "not-alice-secret"
	_, err := trailAs(t, url, wrongSecret).LookupEvents(t.Context(), &cloudtrail.LookupEventsInput{})
	wantAPIError(t, err, "InvalidSignatureException")
	if _, err := trailAs(t, url, deployer).LookupEvents(t.Context(), &cloudtrail.LookupEventsInput{}); err != nil {
		t.Errorf("deployer, signed with its session token: %v", err)
	}
	if got := sim.Calls("LookupEvents"); got != 2 {
		t.Errorf("Calls(LookupEvents) = %d, want 2", got)
	}
	// Operations beyond LookupEvents and the trails' are not served.
	_, err = trailAs(t, url, alice).GetTrailStatus(t.Context(), &cloudtrail.GetTrailStatusInput{Name: aws.String("t")})
	wantAPIError(t, err, "UnknownOperationException")
}

func TestCloudTrail_AdminDelay(t *testing.T) {
	sim, url := ctSim(t, ec2sim.Options{CloudTrailDelay: time.Minute})
	get := func() string {
		resp, err := http.Get(url + "/_sim/cloudtrail")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(resp.StatusCode, " ", strings.TrimSpace(string(body)))
	}
	if got := get(); got != `200 {
  "delay": "1m0s"
}` {
		t.Errorf("GET = %s", got)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"delay": "5m"}`, "200"},
		{`{"delay": "soon"}`, "400"},
		{`{"delay": "-1s"}`, "400"},
	} {
		resp, err := http.Post(url+"/_sim/cloudtrail", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := fmt.Sprint(resp.StatusCode); got != tt.want {
			t.Errorf("POST %s: status %s, want %s", tt.body, got, tt.want)
		}
	}
	if got := sim.CloudTrailDelay(); got != 5*time.Minute {
		t.Errorf("CloudTrailDelay() = %v, want 5m", got)
	}
	if got := get(); got != "200 {\n  \"delay\": \"5m0s\"\n}" {
		t.Errorf("GET after POST = %s", got)
	}
}
