package ec2sim_test

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/latchdev/latch/ec2sim"
)

var (
	alice = ec2sim.Identity{
		AccessKeyID:     "AKIAALICE0000000001",
		SecretAccessKey: "alice-secret",
		ARN:             "arn:aws:iam::111122223333:user/engineering/alice",
	}
	deployer = ec2sim.Identity{
		AccessKeyID:     "ASIADEPLOY000000001",
		SecretAccessKey: "deployer-secret",
		SessionToken:    "deployer-session-token",
		ARN:             "arn:aws:sts::111122223333:assumed-role/deploy/ci-run-7",
		UserID:          "AROAEXAMPLEDEPLOY01:ci-run-7",
	}
)

// stsSim serves a simulator that knows alice and deployer; now, when not
// nil, is its clock.
func stsSim(t *testing.T, now func() time.Time) (endpoint string) {
	t.Helper()
	sim := ec2sim.New(ec2sim.Options{Now: now})
	for _, id := range []ec2sim.Identity{alice, deployer} {
		if err := sim.AddIdentity(id); err != nil {
			t.Fatal(err)
		}
	}
	return mustStart(t, sim)
}

func stsClient(endpoint string, id ec2sim.Identity) *sts.Client {
	return sts.NewFromConfig(aws.Config{
		Region:           "eu-west-1",
		Credentials:      credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
	})
}

func TestSTS_GetCallerIdentity(t *testing.T) {
	endpoint := stsSim(t, nil)
	tests := []struct {
		name                    string
		id                      ec2sim.Identity
		wantARN, wantUserPrefix string
	}{
		{name: "IAM user", id: alice, wantARN: alice.ARN, wantUserPrefix: "AIDA"},
		{name: "assumed role with session token", id: deployer, wantARN: deployer.ARN, wantUserPrefix: deployer.UserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := stsClient(endpoint, tt.id).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.Arn); got != tt.wantARN {
				t.Errorf("Arn = %q, want %q", got, tt.wantARN)
			}
			if got := aws.ToString(out.Account); got != "111122223333" {
				t.Errorf("Account = %q, want 111122223333", got)
			}
			if got := aws.ToString(out.UserId); !strings.HasPrefix(got, tt.wantUserPrefix) {
				t.Errorf("UserId = %q, want prefix %q", got, tt.wantUserPrefix)
			}
		})
	}
}

func TestSTS_RefusesBadCredentials(t *testing.T) {
	endpoint := stsSim(t, nil)
	wrongSecret, noToken, unknown := alice, deployer, alice
	wrongSecret.SecretAccessKey = "not-alice-secret"
	noToken.SessionToken = ""
	unknown.AccessKeyID = "AKIAUNKNOWN00000001"
	tests := []struct {
		name     string
		id       ec2sim.Identity
		wantCode string
	}{
		{name: "unknown key", id: unknown, wantCode: ec2sim.CodeInvalidClientTokenID},
		{name: "wrong secret", id: wrongSecret, wantCode: ec2sim.CodeSignatureDoesNotMatch},
		{name: "missing session token", id: noToken, wantCode: ec2sim.CodeInvalidClientTokenID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stsClient(endpoint, tt.id).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			wantAPIError(t, err, tt.wantCode)
		})
	}
}

func TestSTS_SignatureWindow(t *testing.T) {
	tests := []struct {
		name    string
		skew    time.Duration // simulator clock minus the signer's
		wantErr string
	}{
		{name: "fourteen minutes old", skew: 14 * time.Minute},
		{name: "sixteen minutes old", skew: 16 * time.Minute, wantErr: "Signature expired"},
		{name: "sixteen minutes early", skew: -16 * time.Minute, wantErr: "Signature not yet current"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := stsSim(t, func() time.Time { return time.Now().Add(tt.skew) })
			_, err := stsClient(endpoint, alice).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			apiErr := wantAPIError(t, err, ec2sim.CodeSignatureDoesNotMatch)
			if !strings.Contains(apiErr.ErrorMessage(), tt.wantErr) {
				t.Errorf("message %q does not say %q", apiErr.ErrorMessage(), tt.wantErr)
			}
		})
	}
}

func TestSTS_PresignedRequestReplayed(t *testing.T) {
	endpoint := stsSim(t, nil)
	presign := func(t *testing.T, id ec2sim.Identity) (string, http.Header) {
		t.Helper()
		req, err := sts.NewPresignClient(stsClient(endpoint, id)).PresignGetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{},
			sts.WithPresignClientFromClientOptions(sts.WithAPIOptions(smithyhttp.SetHeaderValue("X-Latch-Server-ID", "latch-prod"))))
		if err != nil {
			t.Fatal(err)
		}
		if req.Method != http.MethodGet {
			t.Fatalf("presigned method = %s, want GET", req.Method)
		}
		return req.URL, req.SignedHeader
	}

	t.Run("as signed", func(t *testing.T) {
		u, h := presign(t, deployer)
		status, body := replay(t, u, h)
		var resp struct {
			XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
			Arn     string   `xml:"GetCallerIdentityResult>Arn"`
			Account string   `xml:"GetCallerIdentityResult>Account"`
			ReqID   string   `xml:"ResponseMetadata>RequestId"`
		}
		if err := xml.Unmarshal(body, &resp); err != nil || status != http.StatusOK {
			t.Fatalf("status %d, %v:\n%s", status, err, body)
		}
		if resp.Arn != deployer.ARN || resp.Account != "111122223333" || resp.ReqID == "" {
			t.Errorf("response = %+v", resp)
		}
	})

	tampered := []struct {
		name     string
		change   func(q url.Values, h http.Header)
		wantCode string
	}{
		{name: "signature", wantCode: ec2sim.CodeSignatureDoesNotMatch, change: func(q url.Values, _ http.Header) {
			sig := []byte(q.Get("X-Amz-Signature"))
			sig[0] ^= 1
			q.Set("X-Amz-Signature", string(sig))
		}},
		{name: "signed header", wantCode: ec2sim.CodeSignatureDoesNotMatch, change: func(_ url.Values, h http.Header) {
			h.Set("X-Latch-Server-ID", "latch-other")
		}},
		{name: "action", wantCode: ec2sim.CodeSignatureDoesNotMatch, change: func(q url.Values, _ http.Header) {
			q.Set("Action", "AssumeRole")
		}},
		{name: "date", wantCode: ec2sim.CodeSignatureDoesNotMatch, change: func(q url.Values, _ http.Header) {
			at, _ := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
			q.Set("X-Amz-Date", at.Add(time.Minute).Format("20060102T150405Z"))
		}},
		{name: "access key", wantCode: ec2sim.CodeInvalidClientTokenID, change: func(q url.Values, _ http.Header) {
			q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), deployer.AccessKeyID, "ASIAUNKNOWN00000001", 1))
		}},
		{name: "no signature", wantCode: ec2sim.CodeMissingAuthenticationToken, change: func(q url.Values, _ http.Header) {
			for k := range q {
				if strings.HasPrefix(k, "X-Amz-") {
					q.Del(k)
				}
			}
		}},
	}
	for _, tt := range tampered {
		t.Run("tampered "+tt.name, func(t *testing.T) {
			raw, h := presign(t, deployer)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			tt.change(q, h)
			u.RawQuery = q.Encode()
			status, body := replay(t, u.String(), h)
			var resp struct {
				XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
				Type    string   `xml:"Error>Type"`
				Code    string   `xml:"Error>Code"`
				ReqID   string   `xml:"RequestId"`
			}
			if err := xml.Unmarshal(body, &resp); err != nil {
				t.Fatalf("status %d, %v:\n%s", status, err, body)
			}
			if status != http.StatusForbidden || resp.Code != tt.wantCode || resp.Type != "Sender" || resp.ReqID == "" {
				t.Errorf("got %d %+v, want 403 %s from Sender:\n%s", status, resp, tt.wantCode, body)
			}
		})
	}
}

func TestSTS_EC2StillServedAlongside(t *testing.T) {
	endpoint := stsSim(t, nil)
	if _, err := newClient(t, endpoint, "us-east-1").DescribeSecurityGroups(t.Context(), nil); err != nil {
		t.Fatalf("EC2 after adding STS identities: %v", err)
	}
	if _, err := stsClient(endpoint, alice).GetCallerIdentity(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestSTS_AddIdentityValidates(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	for _, id := range []ec2sim.Identity{
		{SecretAccessKey: "s", ARN: alice.ARN},
		{AccessKeyID: "AKIA1", ARN: alice.ARN},
		{AccessKeyID: "AKIA1", SecretAccessKey: "s", ARN: "alice"},
	} {
		if err := sim.AddIdentity(id); err == nil {
			t.Errorf("AddIdentity(%+v) = nil, want an error", id)
		}
	}
}

func replay(t *testing.T, u string, h http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		if !strings.EqualFold(k, "Host") {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func wantAPIError(t *testing.T, err error, code string) smithy.APIError {
	t.Helper()
	apiErr, ok := errors.AsType[smithy.APIError](err)
	if !ok || apiErr.ErrorCode() != code {
		t.Fatalf("err = %v, want API error %s", err, code)
	}
	return apiErr
}
