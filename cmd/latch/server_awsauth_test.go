package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/awstest"
)

// Attacks on the AWS identity path, each against real server processes
// with a real SQLite file, proofs presigned by the real SDK and checked by
// the simulator's STS over HTTP.

// eve signs with real AWS credentials, from an account that is not the
// server's, under a role named like the policy's.
var eve = ec2sim.Identity{AccessKeyID: "AKIDEVE", SecretAccessKey: "eve-secret", ARN: "arn:aws:sts::999988887777:assumed-role/dev/eve"}

// id is the server ID the server expects proofs to carry: its URL.
func (sw *serverWorld) id() string { return sw.url }

// proof presigns an AWS identity proof with key and secret, as the CLI
// does, for the server named serverID.
func (w *world) proof(t *testing.T, key, secret, serverID string) string {
	t.Helper()
	h, err := awsauth.Header(t.Context(), aws.Config{
		Region:       awstest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		BaseEndpoint: aws.String(w.env.URL),
	}, serverID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// call sends method path to the server at base with authorization, and
// returns the status and body.
func call(t *testing.T, method, base, path, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// An identity from an account the server does not serve is refused before
// anything runs: no whoami, no audit entry, no look at the policy.
func TestServerRefusesOtherAWSAccounts(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.env.Identity(t, eve.AccessKeyID, eve.SecretAccessKey, eve.ARN)
	w.as(eve.AccessKeyID, eve.SecretAccessKey)
	if r := w.latch(t, "whoami"); r.code != exitRuntime || !strings.Contains(r.stderr, "999988887777") {
		t.Errorf("whoami from another account: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}

	policyWords := []string{"dev-ssh-iam", "assumed-role/dev/*", "aws_principals", "env", "tcp/22"}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/whoami"},
		{http.MethodPost, "/v1/login"},
		{http.MethodGet, "/v1/policy/explain?target=" + w.fleet.Web1},
		{http.MethodGet, "/v1/policy/explain?target=" + w.fleet.Web1 + "&as=arn:aws:sts::123456789012:assumed-role/dev/alice"},
	} {
		status, body := call(t, c.method, w.url, c.path, w.proof(t, eve.AccessKeyID, eve.SecretAccessKey, w.id()))
		if status != http.StatusUnauthorized {
			t.Errorf("%s %s from another account: HTTP %d %s, want 401", c.method, c.path, status, body)
		}
		for _, word := range policyWords {
			if strings.Contains(body, word) {
				t.Errorf("%s %s from another account: the body names %q from the policy: %s", c.method, c.path, word, body)
			}
		}
	}

	delete(w.vars, "LATCH_SERVER")
	for _, e := range decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--json").stdout) {
		if strings.Contains(e.Actor, "999988887777") {
			t.Errorf("the other account wrote an audit entry: %+v", e)
		}
	}
}

// A proof made for one latch server (here a hostile one, which collects
// the proofs its callers send) is refused by another.
func TestServerRefusesProofsForAnotherServer(t *testing.T) {
	b := startServer(t, e2ePolicy)

	var mu sync.Mutex
	var captured []string
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		captured = append(captured, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, `{"code":"unauthorized","message":"no"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(a.Close)
	b.as("AKIDALICE", "alice-secret")
	b.vars["LATCH_SERVER"] = a.URL
	b.latch(t, "whoami")
	mu.Lock()
	defer mu.Unlock()
	if len(captured) == 0 || !strings.HasPrefix(captured[0], awsauth.Scheme+" ") {
		t.Fatalf("server A captured no proof: %q", captured)
	}

	// The client signed the URL it was given, A's, not B's.
	status, body := call(t, http.MethodGet, b.url, "/v1/whoami", captured[0])
	if status != http.StatusUnauthorized {
		t.Fatalf("a proof captured by %s, replayed at %s: HTTP %d %s; want 401", a.URL, b.url, status, body)
	}
	if !strings.Contains(body, a.URL) || !strings.Contains(body, b.url) {
		t.Errorf("the refusal does not name both servers (%s, %s): %s", a.URL, b.url, body)
	}
}

// Each proof is accepted once: by one server, and by replicas sharing its
// database.
func TestServerAcceptsEachProofOnce(t *testing.T) {
	one := startServer(t, e2ePolicy)
	proof := one.proof(t, "AKIDALICE", "alice-secret", one.id())
	if status, body := call(t, http.MethodGet, one.url, "/v1/whoami", proof); status != http.StatusOK {
		t.Fatalf("first use: HTTP %d %s", status, body)
	}
	status, body := call(t, http.MethodGet, one.url, "/v1/whoami", proof)
	if status != http.StatusUnauthorized || !strings.Contains(body, "used before") {
		t.Errorf("second use at the same server: HTTP %d %s; want 401, used before", status, body)
	}

	// A second replica on the same database file, which clients reach by
	// the same URL.
	two := one.launchServer(t, "--url", one.url)
	two.fleet = one.fleet
	for _, order := range [][2]*serverWorld{{one, two}, {two, one}} {
		proof := one.proof(t, "AKIDALICE", "alice-secret", one.id())
		if status, body := call(t, http.MethodGet, order[0].url, "/v1/whoami", proof); status != http.StatusOK {
			t.Fatalf("first use at %s: HTTP %d %s", order[0].url, status, body)
		}
		status, body := call(t, http.MethodGet, order[1].url, "/v1/whoami", proof)
		if status != http.StatusUnauthorized || !strings.Contains(body, "used before") {
			t.Errorf("replayed at the other replica %s: HTTP %d %s; want 401, used before", order[1].url, status, body)
		}
	}
}

// Legitimate calls in quick succession, as a script makes them, all pass:
// the SDK's presigning is deterministic to the second, so only the nonce
// tells their proofs apart.
func TestServerAcceptsBackToBackCalls(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.as("AKIDALICE", "alice-secret")
	for i := range 5 {
		if r := w.latch(t, "whoami"); r.code != 0 {
			t.Fatalf("whoami %d: exit %d %s", i, r.code, r.stderr)
		}
	}
	c := &latchhttp.Client{URL: w.url, Creds: func(ctx context.Context) (string, error) {
		return w.proof(t, "AKIDALICE", "alice-secret", w.id()), nil
	}}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.WhoAmI(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent whoami %d: %v", i, err)
		}
	}
}

// Bad AWS identity flags exit 2 naming the flag, the value and what is
// allowed, before the server binds or opens its database.
func TestServerAWSAuthFlags(t *testing.T) {
	w := newWorld(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(e2ePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	server := []string{"server", "--policy", pf, "--listen", "127.0.0.1:0", "--aws-auth"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no account", server, []string{"aws-account:", "--aws-auth needs the AWS accounts", "12 digits"}},
		{"short account", append(server, "--aws-account", "12345"), []string{`aws-account: "12345" is not an AWS account ID`, "12 digits"}},
		{"one bad of two", append(server, "--aws-account", "123456789012,12345678901x"), []string{`"12345678901x" is not an AWS account ID`}},
		{"bad url", append(server, "--aws-account", "123456789012", "--url", "latch.example.com"), []string{`url: "latch.example.com" is not the server's URL`, "http(s)://HOST"}},
		{"url with query", append(server, "--aws-account", "123456789012", "--url", "https://latch.example.com/?a=b"), []string{`url: "https://latch.example.com/?a=b"`}},
		{"every interface", []string{"server", "--policy", pf, "--listen", ":0", "--aws-auth", "--aws-account", "123456789012", "--tls-cert", "c", "--tls-key", "k"},
			[]string{"url:", "--listen :0 is every interface", "give --url"}},
		{"bad server id", append(server, "--aws-account", "123456789012", "--aws-server-id", "ftp://x"), []string{"aws-server-id:", "not http or https"}},
		{"client bad server id", []string{"--server", "http://127.0.0.1:1", "--server-id", "a b", "--auth", "aws", "whoami"}, []string{"server-id:", "spaces"}},
		{"client bad server", []string{"--server", "ftp://latch", "--auth", "aws", "whoami"}, []string{"server:", `"ftp://latch"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.latch(t, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitUsage, r.stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q does not say %q", r.stderr, want)
				}
			}
		})
	}
	if _, err := os.Stat(w.vars["LATCH_DB"]); !os.IsNotExist(err) {
		t.Errorf("bad flags created the database (%v)", err)
	}
}
