package awsauth_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/ec2sim"
)

// The attacks of issue 10 on the verifier: proofs from the real SDK's
// presigner, checked by the simulator's STS over HTTP, recorded in real
// SQLite stores.

// eve holds real credentials of an account the server does not serve.
var eve = ec2sim.Identity{
	AccessKeyID:     "AKIAEVE000000000001",
	SecretAccessKey: "eve-secret",
	ARN:             "arn:aws:sts::999988887777:assumed-role/deploy/eve",
}

// countingStore counts UseOnce calls to the store it wraps.
type countingStore struct {
	awsauth.UsedProofs
	mu    sync.Mutex
	calls int
}

func (c *countingStore) UseOnce(ctx context.Context, key string, until time.Time) (bool, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.UsedProofs.UseOnce(ctx, key, until)
}

func TestVerify_RefusesOtherAccounts(t *testing.T) {
	env := newSTSEnv(t)
	if err := env.sim.AddIdentity(eve); err != nil {
		t.Fatal(err)
	}
	used := &countingStore{UsedProofs: env.verifier.Used}
	v := *env.verifier
	v.Used = used
	_, err := v.Verify(t.Context(), env.header(t, eve, serverID))
	wantUnauthenticated(t, err, "AWS account 999988887777 is not one this latch server accepts")
	if strings.Contains(latch.ErrorMessage(err), account) {
		t.Errorf("the refusal names the accounts that are allowed: %v", err)
	}
	if used.calls != 0 {
		t.Errorf("a proof from another account was recorded (%d UseOnce calls); refused proofs should cost no write", used.calls)
	}

	v.Accounts = []string{account, "999988887777"}
	id, err := v.Verify(t.Context(), env.header(t, eve, serverID))
	if err != nil || id.Issuer != "999988887777" {
		t.Fatalf("with the account listed: %+v, %v", id, err)
	}
}

func TestVerify_AcceptsEachProofOnce(t *testing.T) {
	env := newSTSEnv(t)

	t.Run("OneServer", func(t *testing.T) {
		h := env.header(t, deployer, serverID)
		if _, err := env.verifier.Verify(t.Context(), h); err != nil {
			t.Fatal(err)
		}
		_, err := env.verifier.Verify(t.Context(), h)
		wantUnauthenticated(t, err, "used before")
	})

	t.Run("ReplicasSharingAFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		a, b := *env.verifier, *env.verifier
		a.Used, b.Used = openStore(t, path), openStore(t, path)
		for _, order := range [][2]*awsauth.Verifier{{&a, &b}, {&b, &a}} {
			h := env.header(t, deployer, serverID)
			if _, err := order[0].Verify(t.Context(), h); err != nil {
				t.Fatal(err)
			}
			_, err := order[1].Verify(t.Context(), h)
			wantUnauthenticated(t, err, "used before")
		}
	})

	t.Run("RacingReplays", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		a, b := *env.verifier, *env.verifier
		a.Used, b.Used = openStore(t, path), openStore(t, path)
		h := env.header(t, deployer, serverID)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			v := &a
			if i%2 == 1 {
				v = &b
			}
			wg.Go(func() { _, errs[i] = v.Verify(t.Context(), h) })
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case latch.ErrorCode(err) != latch.EUNAUTHENTICATED || !strings.Contains(latch.ErrorMessage(err), "used before"):
				t.Errorf("racing use %d: %v; want success or used before", i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d racing uses of one proof succeeded, want 1", ok, n)
		}
	})

	t.Run("RecordHoldsNoProof", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		v := *env.verifier
		v.Used = openStore(t, path)
		h := env.header(t, deployer, serverID)
		if _, err := v.Verify(t.Context(), h); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var key string
		var until int64
		if err := db.QueryRowContext(t.Context(), `SELECT key, until FROM used_once`).Scan(&key, &until); err != nil {
			t.Fatal(err)
		}
		sig := signatureOf(t, h)
		if strings.Contains(key, sig) || strings.Contains(key, deployer.SessionToken) || !strings.HasPrefix(key, "awsauth-proof:") {
			t.Errorf("the record's key %q holds the proof; want a digest", key)
		}
		if got := time.UnixMicro(until); got.Before(time.Now().Add(awsauth.MaxAge)) || got.After(time.Now().Add(awsauth.MaxAge+10*time.Minute)) {
			t.Errorf("the record is kept until %v; want a little over %v from now", got, awsauth.MaxAge)
		}
	})
}

// signatureOf returns a proof's X-Amz-Signature.
func signatureOf(t *testing.T, h string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, awsauth.Scheme+" "))
	if err != nil {
		t.Fatal(err)
	}
	var sr struct{ URL string }
	if err := json.Unmarshal(raw, &sr); err != nil {
		t.Fatal(err)
	}
	_, q, _ := strings.Cut(sr.URL, "X-Amz-Signature=")
	sig, _, _ := strings.Cut(q, "&")
	if len(sig) != 64 {
		t.Fatalf("proof URL has no signature")
	}
	return sig
}

// SigV4 presigning is deterministic: without the nonce, two proofs signed
// by one caller in one second would be the same bytes, and the second
// would be refused as a replay.
func TestVerify_SameSecondProofsBothPass(t *testing.T) {
	env := newSTSEnv(t)
	cfg := aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider(deployer.AccessKeyID, deployer.SecretAccessKey, deployer.SessionToken),
		BaseEndpoint: aws.String(env.endpoint),
	}
	at := time.Now().UTC().Truncate(time.Second)
	var proofs []string
	for range 2 {
		h, err := awsauth.HeaderAt(t.Context(), cfg, serverID, at)
		if err != nil {
			t.Fatal(err)
		}
		proofs = append(proofs, h)
	}
	if proofs[0] == proofs[1] {
		t.Fatal("two proofs signed in one second are identical")
	}
	for i, h := range proofs {
		if _, err := env.verifier.Verify(t.Context(), h); err != nil {
			t.Errorf("proof %d of two signed at %v: %v", i, at, err)
		}
	}
}

func TestVerify_ProofForAnotherServer(t *testing.T) {
	env := newSTSEnv(t)
	b := *env.verifier
	b.ServerID = "https://latch-b.example.com"
	_, err := b.Verify(t.Context(), env.header(t, deployer, "https://latch-a.example.com:8443"))
	wantUnauthenticated(t, err, `for latch server "https://latch-a.example.com:8443", not this one ("https://latch-b.example.com")`)

	// The same server spelt another way is the same server.
	for _, spelling := range []string{"HTTPS://Latch-B.example.com:443/", "https://latch-b.example.com/"} {
		if _, err := b.Verify(t.Context(), env.header(t, deployer, spelling)); err != nil {
			t.Errorf("a proof for %s at %s: %v", spelling, b.ServerID, err)
		}
	}
}

// When the record of used proofs cannot answer, no proof is accepted.
func TestVerify_RecordUnavailable(t *testing.T) {
	env := newSTSEnv(t)
	closed := openStore(t, filepath.Join(t.TempDir(), "latch.db"))
	closed.Close()
	for name, used := range map[string]awsauth.UsedProofs{
		"failing": failingStore{},
		"closed":  closed,
	} {
		v := *env.verifier
		v.Used = used
		_, err := v.Verify(t.Context(), env.header(t, deployer, serverID))
		if latch.ErrorCode(err) != latch.EUNAVAILABLE || !strings.Contains(latch.ErrorMessage(err), "used before") {
			t.Errorf("%s record: err = %v, want EUNAVAILABLE", name, err)
		}
	}
}

type failingStore struct{}

func (failingStore) UseOnce(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("disk on fire")
}

func TestServerID(t *testing.T) {
	tests := []struct{ in, want string }{ // want "" means EINVALID
		{"https://latch.example.com", "https://latch.example.com"},
		{"https://latch.example.com/", "https://latch.example.com"},
		{"HTTPS://LATCH.Example.COM:443/", "https://latch.example.com"},
		{"http://127.0.0.1:80", "http://127.0.0.1"},
		{"http://127.0.0.1:8443/", "http://127.0.0.1:8443"},
		{"https://latch.example.com:80", "https://latch.example.com:80"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"https://[::1]:443", "https://[::1]"},
		{"https://example.com/Latch/", "https://example.com/Latch"},
		{"latch-prod", "latch-prod"},
		{"", ""},
		{"latch prod", ""},
		{"ftp://latch.example.com", ""},
		{"https://", ""},
		{"https://user@latch.example.com", ""},
		{"https://latch.example.com/?x=1", ""},
		{"https://latch.example.com/#top", ""},
		{"https://latch.example.com:port", ""},
	}
	for _, tt := range tests {
		got, err := awsauth.ServerID(tt.in)
		if tt.want == "" {
			if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), "server") {
				t.Errorf("ServerID(%q) = %q, %v; want EINVALID", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ServerID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestHeader_SignsNormalisedServerIDAndNonce(t *testing.T) {
	env := newSTSEnv(t)
	h := env.header(t, deployer, "HTTPS://Latch.Example.com:443/")
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, awsauth.Scheme+" "))
	var sr struct {
		URL     string
		Headers http.Header
	}
	if err := json.Unmarshal(raw, &sr); err != nil {
		t.Fatal(err)
	}
	if got := sr.Headers.Get(awsauth.ServerIDHeader); got != "https://latch.example.com" {
		t.Errorf("signed server ID %q, want the normalised URL", got)
	}
	if n := sr.Headers.Get(awsauth.NonceHeader); len(n) != 32 {
		t.Errorf("nonce %q, want 32 hex digits", n)
	}
	if !strings.Contains(sr.URL, "x-latch-nonce") || !strings.Contains(sr.URL, "x-latch-server-id") {
		t.Errorf("the signed headers do not include the server ID and nonce: %s", sr.URL)
	}
	if _, err := awsauth.Header(t.Context(), aws.Config{}, "ftp://x"); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("Header for a bad server ID: %v, want EINVALID", err)
	}
}
