package http_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/oidctest"
	"github.com/latchdev/latch/oidc"
)

// get calls path on url with the Authorization header auth and, if from
// is valid, X-Forwarded-For from; it returns the status, the Retry-After
// header and the error code.
func get(t *testing.T, url, path, auth string, from netip.Addr) (status int, retryAfter, code string) {
	t.Helper()
	resp, body, err := do(url, path, auth, from)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 400 {
		code = decodeAs[latchhttp.ErrorBody](t, body).Code
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), code
}

func do(url, path, auth string, from netip.Addr) (*http.Response, []byte, error) {
	req, _ := http.NewRequest("GET", url+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if from.IsValid() {
		req.Header.Set("X-Forwarded-For", from.String())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// A flood of AWS proofs STS will refuse, from one address: after the
// address's burst the server answers 429 itself, and STS hears no more.
func TestBadAWSProofsFromOneAddressStopBeforeSTS(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	sts := httptest.NewServer(sim)
	t.Cleanup(sts.Close)
	f := at.New(t)
	auth := &awsauth.Verifier{ServerID: "latch", TrustedHosts: []string{sts.URL}, Accounts: []string{"123456789012"}, Used: f.Store}
	const burst, flood = 10, 300
	// A rate of one per 1000 s: no token comes back while the test runs.
	srv := httptest.NewServer(latchhttp.NewServer(f.Access, auth,
		latchhttp.Options{AddrRateLimit: 0.001, AddrBurst: burst, RateLimit: 1000, Burst: 1000}).Handler())
	t.Cleanup(srv.Close)

	// Signed with a key STS does not know: STS refuses it, but only STS can
	// tell.
	proof, err := awsauth.Header(t.Context(), aws.Config{Region: "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIANOBODY000000000", "not-a-secret", ""),
		BaseEndpoint: aws.String(sts.URL)}, "latch")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for i := range flood {
		st, retry, code := get(t, srv.URL, "/v1/whoami", proof, netip.Addr{})
		counts[st]++
		if st == http.StatusTooManyRequests && (code != "rate_limited" || retry == "") {
			t.Fatalf("proof %d: 429 with code %q and Retry-After %q; want rate_limited and a Retry-After", i, code, retry)
		}
	}
	if calls := sim.Calls("GetCallerIdentity"); calls != burst {
		t.Errorf("%d bad proofs from one address made %d STS calls; want %d, the address's burst", flood, calls, burst)
	}
	if counts[http.StatusUnauthorized] != burst || counts[http.StatusTooManyRequests] != flood-burst {
		t.Errorf("statuses %v; want %d× 401 then %d× 429", counts, burst, flood-burst)
	}
}

// keyCounter counts the requests for an OIDC issuer's signing keys (any
// request but discovery) that reach the issuer.
type keyCounter struct{ n atomic.Int64 }

func (c *keyCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// forge returns a JWT signed by key, naming kid, with claims.
func forge(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	part := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := part(map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}) + "." + part(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Forged bearer tokens naming signing keys the issuer never had: each would
// send the verifier to the issuer for its keys again. From one address the
// address's burst bounds them; from many, the verifier's own refresh bound
// does.
func TestForgedBearerTokensDoNotFetchKeysEachTime(t *testing.T) {
	const clientID, burst, flood = "latch-cli", 5, 50
	op := oidctest.New(t, clientID)
	now := time.Now()
	mallory, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": op.Issuer(), "aud": clientID, "sub": "u-alice", "email": "alice@example.com",
		"email_verified": true, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}

	start := func(t *testing.T, opts latchhttp.Options) (*keyCounter, string) {
		keys := &keyCounter{}
		v, err := oidc.NewVerifier(t.Context(), oidc.Config{Issuer: op.Issuer(), Audience: clientID,
			HTTPClient: &http.Client{Transport: keys}, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		opts.RateLimit, opts.Burst = 1000, 1000
		srv := httptest.NewServer(latchhttp.NewServer(at.New(t).Access, v, opts).Handler())
		t.Cleanup(srv.Close)
		return keys, srv.URL
	}

	t.Run("one address", func(t *testing.T) {
		keys, url := start(t, latchhttp.Options{AddrRateLimit: 0.001, AddrBurst: burst})
		limited := 0
		for i := range flood {
			st, _, _ := get(t, url, "/v1/whoami", "Bearer "+forge(t, mallory, fmt.Sprintf("forged-%d", i), claims), netip.Addr{})
			if st == http.StatusTooManyRequests {
				limited++
			} else if st != http.StatusUnauthorized {
				t.Fatalf("forged token %d: status %d", i, st)
			}
		}
		if n := keys.n.Load(); n > burst || limited < flood-burst {
			t.Errorf("%d forged tokens from one address: %d key fetches, %d refused with 429; want at most %d fetches", flood, n, limited, burst)
		}
	})

	t.Run("many addresses", func(t *testing.T) {
		keys, url := start(t, latchhttp.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		for i := range flood {
			from := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
			if st, _, _ := get(t, url, "/v1/whoami", "Bearer "+forge(t, mallory, fmt.Sprintf("forged-%d", i), claims), from); st != http.StatusUnauthorized {
				t.Fatalf("forged token %d: status %d, want 401", i, st)
			}
		}
		if n := keys.n.Load(); n != 1 {
			t.Errorf("%d forged tokens from %d addresses: %d key fetches; want 1 (the first, while the clock stands still)", flood, flood, n)
		}
		// The flood costs the real users nothing: the issuer's own key was
		// fetched with the first token, and still verifies.
		key, kid := op.SigningKey(t)
		if st, _, _ := get(t, url, "/v1/whoami", "Bearer "+forge(t, key, kid, claims), netip.MustParseAddr("198.51.100.7")); st != http.StatusOK {
			t.Errorf("a token signed by the issuer after the flood: status %d, want 200", st)
		}
	})
}

// The per-address budget is the client's address as withClientAddr sees it
// (X-Forwarded-For from a trusted proxy), an IPv6 /64 being one address.
// The open routes spend it too, and a readiness probe refused does not ask
// the store.
func TestAddressBudget(t *testing.T) {
	f := at.New(t)
	var readies atomic.Int64
	srv := httptest.NewServer(latchhttp.NewServer(f.Access, people, latchhttp.Options{
		AddrRateLimit: 0.001, AddrBurst: 2, RateLimit: 1000, Burst: 1000,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Ready:          func(context.Context) error { readies.Add(1); return nil }}).Handler())
	t.Cleanup(srv.Close)
	a := netip.MustParseAddr
	steps := []struct {
		from string
		path string
		want int
	}{
		{"203.0.113.1", "/v1/whoami", 200},
		{"203.0.113.1", "/v1/whoami", 200},
		{"203.0.113.1", "/v1/whoami", 429},
		{"203.0.113.1", "/v1/health", 429}, // probes are charged
		{"203.0.113.1", "/v1/ready", 429},  // without asking the store
		{"203.0.113.2", "/v1/ready", 200},  // another address, its own budget
		{"203.0.113.2", "/v1/whoami", 200},
		{"203.0.113.2", "/v1/health", 429}, // the probe spent a token
		{"2001:db8::1", "/v1/whoami", 200},
		{"2001:db8::2", "/v1/whoami", 200}, // the same /64
		{"2001:db8::3", "/v1/whoami", 429},
		{"2001:db8:0:1::1", "/v1/whoami", 200},    // another /64
		{"::ffff:203.0.113.1", "/v1/whoami", 429}, // the IPv4 address, mapped
	}
	for i, s := range steps {
		st, retry, _ := get(t, srv.URL, s.path, "Bearer alice", a(s.from))
		if st != s.want {
			t.Fatalf("step %d: %s from %s = %d, want %d", i, s.path, s.from, st, s.want)
		}
		if st == 429 && retry == "" {
			t.Errorf("step %d: 429 without Retry-After", i)
		}
	}
	if n := readies.Load(); n != 1 {
		t.Errorf("the store was asked if it is ready %d times; want 1, for the one probe within its budget", n)
	}
}

// gate is an Authenticator that holds every caller until released, and
// says when one arrives.
type gate struct {
	arrived chan struct{}
	release chan struct{}
}

func (g *gate) Authenticate(r *http.Request) (latch.Identity, error) {
	g.arrived <- struct{}{}
	<-g.release
	return people.Authenticate(r)
}

// When MaxVerifications callers are being verified, the next is answered
// at once with 503 and Retry-After, not queued; once one finishes, callers
// are served again.
func TestConcurrentVerificationsAreBounded(t *testing.T) {
	const slots = 3
	g := &gate{arrived: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(latchhttp.NewServer(at.New(t).Access, g, latchhttp.Options{
		MaxVerifications: slots, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}).Handler())
	t.Cleanup(srv.Close)

	done := make(chan int, slots)
	for i := range slots {
		go func() {
			resp, _, err := do(srv.URL, "/v1/whoami", "Bearer alice", netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}))
			if err != nil {
				done <- -1
				return
			}
			done <- resp.StatusCode
		}()
		<-g.arrived
	}
	type answer struct {
		status           int
		retryAfter, code string
	}
	extra := make(chan answer, 1)
	go func() {
		resp, body, err := do(srv.URL, "/v1/whoami", "Bearer bob", netip.MustParseAddr("198.51.100.9"))
		if err != nil {
			extra <- answer{status: -1}
			return
		}
		var eb latchhttp.ErrorBody
		_ = json.Unmarshal(body, &eb)
		extra <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), eb.Code}
	}()
	select {
	case <-g.arrived:
		close(g.release)
		t.Fatalf("a verification started while %d were in progress", slots)
	case a := <-extra:
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || a.code != "unavailable" {
			t.Errorf("with every verification slot taken: %d %q Retry-After %q; want 503, unavailable, with Retry-After", a.status, a.code, a.retryAfter)
		}
	}
	close(g.release)
	for range slots {
		if st := <-done; st != http.StatusOK {
			t.Errorf("a held caller got %d, want 200", st)
		}
	}
	go func() { <-g.arrived }()
	if st, _, _ := get(t, srv.URL, "/v1/whoami", "Bearer bob", netip.MustParseAddr("198.51.100.9")); st != http.StatusOK {
		t.Errorf("after the slots freed: %d, want 200", st)
	}
}

// A verifier that panics gives its slot back: with one slot, the server
// still verifies after a panic.
func TestAPanickingVerificationFreesItsSlot(t *testing.T) {
	srv := httptest.NewServer(latchhttp.NewServer(at.New(t).Access, panicky{people}, latchhttp.Options{MaxVerifications: 1}).Handler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		who  string
		want int
	}{{"boom", 500}, {"alice", 200}, {"boom", 500}, {"alice", 200}} {
		if st, _, _ := get(t, srv.URL, "/v1/whoami", "Bearer "+tc.who, netip.Addr{}); st != tc.want {
			t.Fatalf("as %s: %d, want %d", tc.who, st, tc.want)
		}
	}
}
