package awsauth_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/sqlite"
)

const (
	account  = "111122223333"
	serverID = "latch-test"
)

var (
	deployer = ec2sim.Identity{
		AccessKeyID:     "ASIADEPLOY000000001",
		SecretAccessKey: "deployer-secret",
		SessionToken:    "deployer-session-token",
		ARN:             "arn:aws:sts::" + account + ":assumed-role/deploy/ci-run-7",
	}
	alice = ec2sim.Identity{
		AccessKeyID:     "AKIAALICE0000000001",
		SecretAccessKey: "alice-secret",
		ARN:             "arn:aws:iam::" + account + ":user/engineering/alice",
	}
)

// stsEnv is an STS simulator that knows deployer and alice, and a verifier
// that trusts it.
type stsEnv struct {
	sim      *ec2sim.Server
	endpoint string
	verifier *awsauth.Verifier
}

func newSTSEnv(t *testing.T) *stsEnv {
	t.Helper()
	sim := ec2sim.New(ec2sim.Options{})
	for _, id := range []ec2sim.Identity{deployer, alice} {
		if err := sim.AddIdentity(id); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return &stsEnv{sim: sim, endpoint: ts.URL, verifier: &awsauth.Verifier{ServerID: serverID, TrustedHosts: []string{ts.URL},
		Accounts: []string{account}, Used: openStore(t, filepath.Join(t.TempDir(), "latch.db"))}}
}

// openStore opens a SQLite store at path, closed when the test ends: the
// record of used proofs a server keeps.
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// header is id's proof for the latch server named server.
func (e *stsEnv) header(t *testing.T, id ec2sim.Identity, server string) string {
	t.Helper()
	h, err := awsauth.Header(t.Context(), aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken),
		BaseEndpoint: aws.String(e.endpoint),
	}, server)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerify_ProvesIdentity(t *testing.T) {
	env := newSTSEnv(t)
	tests := []struct {
		name        string
		id          ec2sim.Identity
		wantSubject string
	}{
		{name: "assumed role", id: deployer, wantSubject: "arn:aws:sts::" + account + ":assumed-role/deploy/ci-run-7"},
		{name: "IAM user with a path", id: alice, wantSubject: "arn:aws:iam::" + account + ":user/alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/requests", nil)
			r.Header.Set("Authorization", env.header(t, tt.id, serverID))
			got, err := env.verifier.Authenticate(r)
			if err != nil {
				t.Fatal(err)
			}
			want := latch.Identity{Kind: latch.KindIAM, Subject: tt.wantSubject, Issuer: account}
			if got.Key() != want.Key() || got.Subject != want.Subject || len(got.Groups) != 0 {
				t.Errorf("Authenticate() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestVerify_RefusesBeforeAskingSTS(t *testing.T) {
	env := newSTSEnv(t)
	future := func() time.Time { return time.Now().Add(awsauth.MaxAge + time.Minute) }
	past := func() time.Time { return time.Now().Add(-awsauth.MaxAge - time.Minute) }
	tests := []struct {
		name     string
		verifier awsauth.Verifier // ServerID and TrustedHosts filled in when empty
		header   func(h string) string
		wantMsg  string
	}{
		{name: "untrusted host", verifier: awsauth.Verifier{TrustedHosts: []string{}}, wantMsg: "not a trusted STS endpoint"},
		{name: "default hosts do not include the simulator", verifier: awsauth.Verifier{TrustedHosts: nil}, wantMsg: "not a trusted STS endpoint"},
		{name: "another server's ID", verifier: awsauth.Verifier{ServerID: "latch-other"}, wantMsg: `for latch server "latch-test", not this one ("latch-other")`},
		{name: "stale date", verifier: awsauth.Verifier{Now: future}, wantMsg: "more than 15m0s ago"},
		{name: "future date", verifier: awsauth.Verifier{Now: past}, wantMsg: "in the future"},
		{name: "another action", header: editURL(func(q url.Values) { q.Set("Action", "AssumeRole") }), wantMsg: "not an sts:GetCallerIdentity request"},
		{name: "extra parameter", header: editURL(func(q url.Values) { q.Set("RoleArn", "x") }), wantMsg: "parameters other than"},
		{name: "server ID not signed", header: editURL(func(q url.Values) {
			q.Set("X-Amz-SignedHeaders", "host")
		}), wantMsg: "does not sign X-Latch-Server-ID"},
		{name: "server ID removed", header: edit(func(sr map[string]any) {
			delete(sr["headers"].(map[string]any), "X-Latch-Server-Id")
		}), wantMsg: "names no latch server"},
		{name: "nonce removed", header: edit(func(sr map[string]any) {
			delete(sr["headers"].(map[string]any), "X-Latch-Nonce")
		}), wantMsg: "carries no nonce"},
		{name: "nonce malformed", header: edit(func(sr map[string]any) {
			sr["headers"].(map[string]any)["X-Latch-Nonce"] = []string{"0123"}
		}), wantMsg: "X-Latch-Nonce is not 32 lower-case hex digits"},
		{name: "nonce not signed", header: editURL(func(q url.Values) {
			q.Set("X-Amz-SignedHeaders", "host;x-latch-server-id")
		}), wantMsg: "does not sign X-Latch-Nonce"},
		{name: "two signatures", header: edit(func(sr map[string]any) {
			sr["headers"].(map[string]any)["Authorization"] = []string{"AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)}
		}), wantMsg: "carries two signatures"},
		{name: "no signature", header: editURL(func(q url.Values) { q.Del("X-Amz-Signature") }), wantMsg: "no well-formed signature"},
		{name: "another path", header: edit(func(sr map[string]any) {
			sr["url"] = strings.Replace(sr["url"].(string), "/?", "/admin?", 1)
		}), wantMsg: "URL has a path"},
		{name: "wrong scheme", header: func(h string) string { return "Bearer " + strings.Fields(h)[1] }, wantMsg: "scheme is not LatchAWS"},
		{name: "not base64", header: func(string) string { return "LatchAWS %%%" }, wantMsg: "not base64"},
		{name: "not JSON", header: func(string) string { return "LatchAWS " + base64.StdEncoding.EncodeToString([]byte("{")) }, wantMsg: "not a signed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.verifier
			if v.ServerID == "" {
				v.ServerID = serverID
			}
			v.Accounts, v.Used = env.verifier.Accounts, env.verifier.Used
			if tt.name != "default hosts do not include the simulator" && v.TrustedHosts == nil {
				v.TrustedHosts = env.verifier.TrustedHosts
			}
			h := env.header(t, deployer, serverID)
			if tt.header != nil {
				h = tt.header(h)
			}
			before := env.sim.Calls("GetCallerIdentity")
			_, err := v.Verify(t.Context(), h)
			wantUnauthenticated(t, err, tt.wantMsg)
			if env.sim.Calls("GetCallerIdentity") != before {
				t.Error("the proof was sent to STS; it should have been refused first")
			}
		})
	}
}

func TestVerify_RefusedBySTS(t *testing.T) {
	env := newSTSEnv(t)
	unknown := deployer
	unknown.AccessKeyID = "ASIAUNKNOWN00000001"
	tests := []struct {
		name    string
		header  func(t *testing.T) string
		wantMsg string
	}{
		{name: "unknown key", wantMsg: "InvalidClientTokenId", header: func(t *testing.T) string {
			return env.header(t, unknown, serverID)
		}},
		{name: "tampered signature", wantMsg: "SignatureDoesNotMatch", header: func(t *testing.T) string {
			return editURL(func(q url.Values) {
				// Another hex digit, so the signature is well-formed and
				// only STS can tell it is wrong.
				sig := []byte(q.Get("X-Amz-Signature"))
				if sig[len(sig)-1] == '0' {
					sig[len(sig)-1] = '1'
				} else {
					sig[len(sig)-1] = '0'
				}
				q.Set("X-Amz-Signature", string(sig))
			})(env.header(t, deployer, serverID))
		}},
		{name: "replayed to another server", wantMsg: "SignatureDoesNotMatch", header: func(t *testing.T) string {
			// Signed for latch-other, relabelled for this server.
			return edit(func(sr map[string]any) {
				sr["headers"].(map[string]any)["X-Latch-Server-Id"] = []string{serverID}
			})(env.header(t, deployer, "latch-other"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.verifier.Verify(t.Context(), tt.header(t))
			wantUnauthenticated(t, err, tt.wantMsg)
		})
	}
}

func TestVerify_DefaultHostsForwardExactly(t *testing.T) {
	env := newSTSEnv(t)
	h := env.header(t, deployer, serverID)
	for _, host := range []string{"sts.amazonaws.com", "sts.eu-west-1.amazonaws.com", "sts.ap-southeast-2.amazonaws.com"} {
		t.Run(host, func(t *testing.T) {
			h := env.header(t, deployer, serverID) // each proof is accepted once
			proof := edit(func(sr map[string]any) {
				u, _ := url.Parse(sr["url"].(string))
				u.Scheme, u.Host = "https", host
				sr["url"] = u.String()
				delete(sr["headers"].(map[string]any), "Host")
			})(h)
			var sent *http.Request
			v := awsauth.Verifier{ServerID: serverID, Accounts: env.verifier.Accounts, Used: env.verifier.Used, HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = r
				return xmlResponse(http.StatusOK, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>`+deployer.ARN+`</Arn><UserId>AROAX:ci-run-7</UserId><Account>`+account+`</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`), nil
			})}}
			id, err := v.Verify(t.Context(), proof)
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != deployer.ARN {
				t.Errorf("Subject = %q, want %q", id.Subject, deployer.ARN)
			}
			if sent.URL.Host != host || sent.Method != http.MethodGet || sent.Header.Get("X-Latch-Server-ID") != serverID ||
				sent.URL.Query().Get("X-Amz-Signature") == "" {
				t.Errorf("sent %s %s with headers %v", sent.Method, sent.URL.Redacted(), sent.Header)
			}
		})
	}
	for _, bad := range []string{"http://sts.amazonaws.com", "https://sts.amazonaws.com.evil.example", "https://evil.example", "https://sts.us-gov-west-1.amazonaws.com"} {
		t.Run(bad, func(t *testing.T) {
			proof := edit(func(sr map[string]any) {
				u, _ := url.Parse(sr["url"].(string))
				nu, _ := url.Parse(bad)
				u.Scheme, u.Host = nu.Scheme, nu.Host
				sr["url"] = u.String()
			})(h)
			_, err := (&awsauth.Verifier{ServerID: serverID, Accounts: env.verifier.Accounts, Used: env.verifier.Used}).Verify(t.Context(), proof)
			wantUnauthenticated(t, err, "not a trusted STS endpoint")
		})
	}
}

func TestVerify_STSUnavailable(t *testing.T) {
	env := newSTSEnv(t)
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError} {
		v := awsauth.Verifier{ServerID: serverID, TrustedHosts: env.verifier.TrustedHosts, Accounts: env.verifier.Accounts, Used: env.verifier.Used,
			HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return xmlResponse(status, `<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>`), nil
			})}}
		_, err := v.Verify(t.Context(), env.header(t, deployer, serverID))
		if latch.ErrorCode(err) != latch.EUNAVAILABLE {
			t.Errorf("HTTP %d: err = %v, want EUNAVAILABLE", status, err)
		}
	}
}

// A verifier missing a part refuses everything rather than accept too much.
func TestVerify_NeedsServerIDAccountsAndRecord(t *testing.T) {
	env := newSTSEnv(t)
	for name, v := range map[string]awsauth.Verifier{
		"no ServerID": {TrustedHosts: env.verifier.TrustedHosts, Accounts: env.verifier.Accounts, Used: env.verifier.Used},
		"no Accounts": {ServerID: serverID, TrustedHosts: env.verifier.TrustedHosts, Used: env.verifier.Used},
		"no Used":     {ServerID: serverID, TrustedHosts: env.verifier.TrustedHosts, Accounts: env.verifier.Accounts},
	} {
		before := env.sim.Calls("GetCallerIdentity")
		_, err := v.Verify(t.Context(), env.header(t, deployer, serverID))
		if latch.ErrorCode(err) != latch.EINTERNAL {
			t.Errorf("%s: err = %v, want EINTERNAL", name, err)
		}
		if env.sim.Calls("GetCallerIdentity") != before {
			t.Errorf("%s: the proof was sent to STS", name)
		}
	}
}

func TestAuthenticate_MissingHeader(t *testing.T) {
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	_, err := (&awsauth.Verifier{ServerID: serverID, Accounts: []string{account}, Used: openStore(t, filepath.Join(t.TempDir(), "latch.db"))}).Authenticate(r)
	wantUnauthenticated(t, err, "no Authorization header")
}

func wantUnauthenticated(t *testing.T, err error, msg string) {
	t.Helper()
	if latch.ErrorCode(err) != latch.EUNAUTHENTICATED || !strings.Contains(latch.ErrorMessage(err), msg) {
		t.Fatalf("err = %v, want EUNAUTHENTICATED mentioning %q", err, msg)
	}
	if strings.Contains(latch.ErrorMessage(err), "X-Amz-Signature=") || strings.Contains(latch.ErrorMessage(err), deployer.SessionToken) {
		t.Errorf("error message leaks the proof: %v", err)
	}
}

// edit returns a function that decodes a proof, lets change edit its JSON,
// and encodes it again.
func edit(change func(sr map[string]any)) func(h string) string {
	return func(h string) string {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "LatchAWS "))
		if err != nil {
			panic(err)
		}
		var sr map[string]any
		if err := json.Unmarshal(raw, &sr); err != nil {
			panic(err)
		}
		change(sr)
		raw, err = json.Marshal(sr)
		if err != nil {
			panic(err)
		}
		return "LatchAWS " + base64.StdEncoding.EncodeToString(raw)
	}
}

// editURL edits the query of a proof's URL.
func editURL(change func(q url.Values)) func(h string) string {
	return edit(func(sr map[string]any) {
		u, err := url.Parse(sr["url"].(string))
		if err != nil {
			panic(err)
		}
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		sr["url"] = u.String()
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func xmlResponse(status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"text/xml"}},
		Body:       io.NopCloser(strings.NewReader(body)),
	}
}
