package ec2sim_test

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestRegions_AreSeparate(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	url := mustStart(t, sim)
	east, west := newClient(t, url, "us-east-1"), newClient(t, url, "eu-west-1")

	mustAuthorize(t, east, web, ssh("192.0.2.1/32"))
	_, err := west.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
	})
	wantCode(t, err, "InvalidGroup.NotFound")

	out, err := west.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String("web-latch"), Description: aws.String("d")})
	if err != nil {
		t.Fatalf("same name in another region: %v", err)
	}
	mustAuthorize(t, west, aws.ToString(out.GroupId), ssh("192.0.2.1/32"))
	if n := len(sim.Rules("eu-west-1", "")); n != 1 {
		t.Errorf("%d rules in eu-west-1, want 1", n)
	}
	if n := len(sim.Rules("us-east-1", web)); n != 1 {
		t.Errorf("%d rules in us-east-1, want 1", n)
	}
	in, err := west.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil || len(in.Reservations) != 0 {
		t.Errorf("instances in eu-west-1 = %v, %v; want none", in, err)
	}
}

// post sends a raw Query API request, without the SDK.
func post(t *testing.T, h http.Handler, form url.Values, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

type errorDoc struct {
	Code      string `xml:"Errors>Error>Code"`
	Message   string `xml:"Errors>Error>Message"`
	RequestID string `xml:"RequestID"`
}

func TestProtocolErrors(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no action", url.Values{"Version": {"2016-11-15"}}, 400, "MissingAction"},
		{"unknown action", url.Values{"Action": {"StopInstances"}, "Version": {"2016-11-15"}}, 400, "InvalidAction"},
		{"no version", url.Values{"Action": {"DescribeInstances"}}, 400, "MissingParameter"},
		{"old version", url.Values{"Action": {"DescribeInstances"}, "Version": {"2014-10-01"}}, 400, "NoSuchVersion"},
		{"dry run", url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}, "DryRun": {"true"}}, 412, "DryRunOperation"},
		{"bad token", url.Values{"Action": {"DescribeTags"}, "Version": {"2016-11-15"}, "NextToken": {"nope"}}, 400, "InvalidPaginationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, sim, tt.form, "")
			var doc errorDoc
			if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tt.status || doc.Code != tt.code {
				t.Errorf("got %d %s (%s), want %d %s", rec.Code, doc.Code, doc.Message, tt.status, tt.code)
			}
			if id := rec.Header().Get("x-amzn-RequestId"); id == "" || id != doc.RequestID {
				t.Errorf("request ID header %q, body %q; want the same, non-empty", id, doc.RequestID)
			}
		})
	}
	if n := sim.Calls("StopInstances"); n != 1 {
		t.Errorf("Calls(StopInstances) = %d, want 1: unknown actions are counted too", n)
	}
}

func TestRegion_FromCredentialScope(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	create := url.Values{"Action": {"CreateSecurityGroup"}, "Version": {"2016-11-15"}, "GroupName": {"g"}, "GroupDescription": {"d"}}
	auth := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/ap-south-1/ec2/aws4_request, SignedHeaders=host, Signature=abc"
	if rec := post(t, sim, create, auth); rec.Code != 200 {
		t.Fatalf("create in ap-south-1: %d %s", rec.Code, rec.Body)
	}
	// No credential at all is us-east-1, where g does not exist yet.
	if rec := post(t, sim, create, ""); rec.Code != 200 {
		t.Fatalf("create in us-east-1: %d %s", rec.Code, rec.Body)
	}
	if rec := post(t, sim, create, auth); rec.Code != 400 || !strings.Contains(rec.Body.String(), "InvalidGroup.Duplicate") {
		t.Errorf("second create in ap-south-1: %d %s", rec.Code, rec.Body)
	}
}

func TestZeroValueServer(t *testing.T) {
	var sim ec2sim.Server
	c := newClient(t, mustStart(t, &sim), "us-east-1")
	out, err := c.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String("g"), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	mustAuthorize(t, c, aws.ToString(out.GroupId), ssh("192.0.2.1/32"))
}

// Client calls the handler in-process, so the SDK works inside a synctest
// bubble, where TCP does not, and injected latency costs no real time.
func TestClient_InProcessInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := ec2sim.New(ec2sim.Options{})
		if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
			t.Fatal(err)
		}
		sim.SetFaults(ec2sim.Faults{Latency: 10 * time.Minute})
		c := ec2.NewFromConfig(aws.Config{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
			BaseEndpoint: aws.String("http://ec2sim.invalid"),
			HTTPClient:   sim.Client(),
		})
		mustAuthorize(t, c, web, ssh("192.0.2.1/32"))
		out, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{
			Filters: []types.Filter{filter("group-id", web)},
		})
		if err != nil || len(ingressOnly(out.SecurityGroupRules)) != 1 {
			t.Fatalf("describe = %v, %v", out, err)
		}
	})
}
