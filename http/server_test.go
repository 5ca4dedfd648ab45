package http_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
)

// tokens is a test Authenticator: "Bearer NAME" is the person NAME. The
// real authenticators (OIDC, AWS IAM) have their own tests.
type tokens map[string]latch.Identity

func (tk tokens) Authenticate(r *http.Request) (latch.Identity, error) {
	name, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if id, found := tk[name]; ok && found {
		return id, nil
	}
	return latch.Identity{}, latch.Errorf(latch.EUNAUTHENTICATED, "no or unknown token")
}

var people = tokens{"alice": at.Alice, "bob": at.Bob, "carol": at.Carol, "dave": at.Dave, "erin": at.Erin}

type server struct {
	*at.Fixture
	url string
}

func newServer(t testing.TB, opts latchhttp.Options) *server {
	t.Helper()
	f := at.New(t)
	srv := httptest.NewServer(latchhttp.NewServer(f.Access, people, opts).Handler())
	t.Cleanup(srv.Close)
	return &server{Fixture: f, url: srv.URL}
}

// call makes one API call as who ("" for nobody) and returns the status
// and body.
func (s *server) call(t testing.TB, who, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+who)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func decodeAs[T any](t testing.TB, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	return v
}

// pendingRequest makes a fresh request by alice that needs approval.
func (s *server) pendingRequest(t *testing.T) string {
	t.Helper()
	st, body := s.call(t, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: s.Fleet.DB1, Port: "22", Reason: "fix"})
	if st != http.StatusCreated {
		t.Fatalf("create pending request: %d %s", st, body)
	}
	return string(decodeAs[latchhttp.RequestJSON](t, body).ID)
}

// activeGrant makes a fresh auto-approved grant for alice.
func (s *server) activeGrant(t *testing.T) string {
	t.Helper()
	st, body := s.call(t, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: "deploy"})
	if st != http.StatusCreated {
		t.Fatalf("create grant: %d %s", st, body)
	}
	return string(decodeAs[latchhttp.RequestJSON](t, body).GrantID)
}

// TestAuthorizationMatrix calls every endpoint as each role and checks the
// status: requester (alice), approver (bob), admin (carol), a stranger to
// the policy (dave) and nobody.
func TestAuthorizationMatrix(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000, AddrRateLimit: 1000, AddrBurst: 1000})
	roles := []string{"alice", "bob", "carol", "dave", ""}
	type endpoint struct {
		name   string
		method string
		path   func(t *testing.T, want int) string // fresh state for calls that will change it
		body   any
		want   []int // per role, in the order of roles
	}
	fixed := func(p string) func(*testing.T, int) string { return func(*testing.T, int) string { return p } }
	var shared, sharedGrant string
	endpoints := []endpoint{
		{"health", "GET", fixed("/v1/health"), nil, []int{200, 200, 200, 200, 200}},
		{"ready", "GET", fixed("/v1/ready"), nil, []int{200, 200, 200, 200, 200}},
		{"whoami", "GET", fixed("/v1/whoami"), nil, []int{200, 200, 200, 200, 401}},
		{"login", "POST", fixed("/v1/login"), nil, []int{200, 200, 200, 200, 401}},
		{"create request", "POST", fixed("/v1/requests"), latchhttp.RequestBody{Target: s.Fleet.DB1, Port: "22", Reason: "x"}, []int{201, 403, 403, 403, 401}},
		{"list requests", "GET", fixed("/v1/requests"), nil, []int{200, 200, 200, 200, 401}},
		{"get request", "GET", func(*testing.T, int) string { return "/v1/requests/" + shared }, nil, []int{200, 200, 200, 403, 401}},
		{"approve", "POST", func(t *testing.T, _ int) string { return "/v1/requests/" + s.pendingRequest(t) + "/approve" }, nil, []int{403, 200, 403, 403, 401}},
		{"deny", "POST", func(t *testing.T, _ int) string { return "/v1/requests/" + s.pendingRequest(t) + "/deny" }, latchhttp.ReviewBody{Reason: "no"}, []int{403, 200, 403, 403, 401}},
		{"withdraw", "POST", func(t *testing.T, _ int) string { return "/v1/requests/" + s.pendingRequest(t) + "/withdraw" }, nil, []int{200, 403, 403, 403, 401}},
		{"list own grants", "GET", fixed("/v1/grants"), nil, []int{200, 200, 200, 200, 401}},
		{"list all grants", "GET", fixed("/v1/grants?all=true"), nil, []int{403, 403, 200, 403, 401}},
		{"get grant", "GET", func(*testing.T, int) string { return "/v1/grants/" + sharedGrant }, nil, []int{200, 403, 200, 403, 401}},
		{"revoke grant", "POST", func(t *testing.T, want int) string {
			if want != 200 {
				return "/v1/grants/" + sharedGrant + "/revoke" // a live grant, which the refusal leaves alone
			}
			return "/v1/grants/" + s.activeGrant(t) + "/revoke"
		}, nil, []int{200, 403, 200, 403, 401}},
		{"ssh login", "POST", func(*testing.T, int) string { return "/v1/grants/" + sharedGrant + "/ssh" },
			latchhttp.SSHBody{PublicKey: testPublicKey}, []int{200, 403, 403, 403, 401}},
		{"explain", "GET", fixed("/v1/policy/explain?target=" + s.Fleet.DB1), nil, []int{200, 200, 200, 200, 401}},
		{"explain as another", "GET", fixed("/v1/policy/explain?target=" + s.Fleet.DB1 + "&as=alice@example.com&groups=dev"), nil, []int{200, 403, 200, 403, 401}},
		{"preview", "POST", fixed("/v1/requests/preview"), latchhttp.RequestBody{Target: s.Fleet.DB1, Port: "22", Reason: "x"}, []int{200, 200, 200, 200, 401}},
		{"askable rules", "GET", fixed("/v1/rules"), nil, []int{200, 200, 200, 200, 401}},
		{"grant timeline", "GET", func(*testing.T, int) string { return "/v1/grants/" + sharedGrant + "/timeline" }, nil, []int{200, 403, 200, 403, 401}},
		{"audit log", "GET", fixed("/v1/audit"), nil, []int{403, 403, 200, 403, 401}},
		{"verify audit", "GET", fixed("/v1/audit/verify"), nil, []int{403, 403, 200, 403, 401}},
		{"policy status", "GET", fixed("/v1/policy/status"), nil, []int{403, 403, 200, 403, 401}},
		{"unknown endpoint", "GET", fixed("/v1/nothing"), nil, []int{404, 404, 404, 404, 401}},
	}
	shared = s.pendingRequest(t)
	sharedGrant = s.activeGrant(t)
	for _, e := range endpoints {
		for i, role := range roles {
			name := role
			if name == "" {
				name = "nobody"
			}
			t.Run(e.name+"/"+name, func(t *testing.T) {
				st, body := s.call(t, role, e.method, e.path(t, e.want[i]), e.body)
				if st != e.want[i] {
					t.Fatalf("%s %s as %s = %d, want %d: %s", e.method, e.name, name, st, e.want[i], body)
				}
				if st >= 400 {
					eb := decodeAs[latchhttp.ErrorBody](t, body)
					if eb.Code == "" || eb.Message == "" || eb.RequestID == "" {
						t.Errorf("error body %s lacks code, message or request_id", body)
					}
				}
			})
		}
	}
	if g, err := s.Store.Grant(t.Context(), latch.GrantID(sharedGrant)); err != nil || g.State != latch.StateActive {
		t.Errorf("refused revokes changed the grant: %s, %v", g.State, err)
	}
}

// testPublicKey is any OpenSSH public key; the server signs public keys only.
const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0vK3w0OqN3ew1C3LRnbXN+Vr5K6ma8cHL1xPzWJ4D alice@laptop"

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
