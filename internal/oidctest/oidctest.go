// Package oidctest runs a real OpenID provider in-process for tests:
// zitadel's op package with its example in-memory storage, served with
// httptest on 127.0.0.1, behind a two-form login UI that tests drive with
// plain HTTP, as a user's browser would.
//
// The provider knows one client, a public native client such as latch's
// CLI, allowed the authorization code (with PKCE), device and refresh
// grants, with the loopback redirects RedirectURI (the CLI's) and
// PortalRedirectURI (a latch server's portal on loopback) on any port. Its ID
// tokens last TokenLifetime and carry the email, email_verified and groups
// claims. Device logins poll once a second.
package oidctest

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// TokenLifetime is how long the provider's ID tokens last.
	TokenLifetime = 10 * time.Minute

	// RedirectURI is the client's registered redirect. Being a loopback
	// URI of a native client, it matches any port (RFC 8252).
	RedirectURI = "http://127.0.0.1/callback"

	// PortalRedirectURI is the client's other registered redirect: the
	// portal of a latch server listening on loopback, on any port.
	PortalRedirectURI = "http://127.0.0.1/auth/callback"

	// DevicePollInterval is how often device logins may poll, the least
	// RFC 8628 allows: each device login waits at least this long.
	DevicePollInterval = time.Second
)

// User is a person the provider knows.
type User struct {
	Username, Password string
	Email              string
	EmailVerified      bool
	Groups             []string // the groups claim
}

// ID is u's subject (the sub claim) at the provider: "u-" and the username.
func (u User) ID() string { return "u-" + u.Username }

// OP is an OpenID provider served on 127.0.0.1 until its test ends.
type OP struct {
	issuer   string
	storage  *opStorage
	provider *op.Provider
}

// New starts a provider that knows clientID and users, and stops it when t
// ends. The provider logs to t.
func New(t testing.TB, clientID string, users ...User) *OP {
	t.Helper()
	if clientID == "" {
		t.Fatal("oidctest: no client ID")
	}
	us := make(userStore, len(users))
	for _, u := range users {
		if u.Username == "" || us.GetUserByUsername(u.Username) != nil {
			t.Fatalf("oidctest: user %q: usernames must be given and distinct", u.Username)
		}
		us[u.ID()] = &testUser{
			User: storage.User{ID: u.ID(), Username: u.Username, Password: u.Password,
				Email: u.Email, EmailVerified: u.EmailVerified},
			groups: slices.Clone(u.Groups),
		}
	}
	ts := httptest.NewUnstartedServer(nil)
	t.Cleanup(ts.Close)
	issuer := "http://" + ts.Listener.Addr().String()
	clients := map[string]*storage.Client{clientID: storage.NativeClient(clientID, RedirectURI, PortalRedirectURI)}
	st := &opStorage{Storage: storage.NewStorageWithClients(us, clients), users: us}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             sha256.Sum256([]byte(issuer)),
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       []string{"openid", "email", "profile", "groups", "offline_access"},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     5 * time.Minute,
			PollInterval: DevicePollInterval,
			UserFormPath: "/device",
			UserCode:     op.UserCodeBase20,
		},
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	o := &OP{issuer: issuer, storage: st, provider: provider}
	mux := http.NewServeMux()
	mux.Handle("/login/username", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(o.login))
	mux.HandleFunc("/device", o.device)
	mux.Handle("/", provider)
	ts.Config.Handler = mux
	ts.Start()
	return o
}

// Issuer is the provider's issuer URL, http://127.0.0.1:PORT.
func (o *OP) Issuer() string { return o.issuer }

// Browser returns an Open function for a login with the authorization code
// flow: it logs u in through the login page and follows the redirects back
// to the caller's loopback listener, expecting a page that says "logged in".
func (o *OP) Browser(u User) func(authURL string) error {
	return func(authURL string) error {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return err
		}
		c := &http.Client{Jar: jar}
		resp, err := c.Get(authURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		id := resp.Request.URL.Query().Get("authRequestID")
		if id == "" {
			return fmt.Errorf("the provider did not show its login page (%s)", resp.Status)
		}
		resp, err = c.PostForm(o.issuer+"/login/username", url.Values{"id": {id}, "username": {u.Username}, "password": {u.Password}})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "logged in") {
			return fmt.Errorf("login ended at %s with %s: %s", resp.Request.URL.Path, resp.Status, body)
		}
		return nil
	}
}

// ApproveDevice enters userCode on the device page as u and allows (or
// denies) the login.
func (o *OP) ApproveDevice(u User, userCode string, allow bool) error {
	action := "deny"
	if allow {
		action = "allow"
	}
	resp, err := http.PostForm(o.issuer+"/device", url.Values{
		"user_code": {userCode}, "username": {u.Username}, "password": {u.Password}, "action": {action}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("device approval: %s: %s", resp.Status, body)
	}
	return nil
}

// SigningKey is the provider's own private key and its key ID, for tests
// that forge tokens the provider never issued.
func (o *OP) SigningKey(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := o.storage.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return k.Key().(*rsa.PrivateKey), k.ID()
}

// login is the login page the provider sends browsers to for the code flow.
func (o *OP) login(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8") // a real browser shows the form, not its text
		fmt.Fprintf(w, `<form method="post"><input type="hidden" name="id" value="%s">`+
			`<input name="username"><input name="password" type="password"></form>`, html.EscapeString(r.URL.Query().Get("authRequestID")))
		return
	}
	id := r.PostFormValue("id")
	if err := o.storage.CheckUsernamePassword(r.PostFormValue("username"), r.PostFormValue("password"), id); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, op.AuthCallbackURL(o.provider)(r.Context(), id), http.StatusFound)
}

// device is the page where a user enters a device code and approves it.
func (o *OP) device(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		fmt.Fprintf(w, `<form method="post"><input name="user_code" value="%s"><input name="username">`+
			`<input name="password" type="password"><button name="action" value="allow">Allow</button></form>`,
			html.EscapeString(r.URL.Query().Get("user_code")))
		return
	}
	username, code := r.PostFormValue("username"), r.PostFormValue("user_code")
	if err := o.storage.CheckUsernamePasswordSimple(username, r.PostFormValue("password")); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var err error
	if r.PostFormValue("action") == "allow" {
		err = o.storage.CompleteDeviceAuthorization(r.Context(), code, o.storage.users.GetUserByUsername(username).ID)
	} else {
		err = o.storage.DenyDeviceAuthorization(r.Context(), code)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, "Done. You can return to your device.")
}

// opStorage is the example storage with groups in ID tokens and a client
// that may use every flow latch does.
type opStorage struct {
	*storage.Storage
	users userStore
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return client{c}, nil
}

// SetUserinfoFromRequest adds the groups claim when the groups scope was
// granted, and says email_verified: false outright, as many providers do
// (the example storage leaves it out).
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, ok := s.users[req.GetSubject()]
	if ok && slices.Contains(scopes, "groups") {
		info.AppendClaims("groups", u.groups)
	}
	if ok && slices.Contains(scopes, "email") && !u.EmailVerified {
		info.AppendClaims("email_verified", false)
	}
	return s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes)
}

// client is latch's CLI as registered at the provider: a public native
// client allowed the code, device and refresh grants, whose ID tokens
// carry the email and groups claims.
type client struct{ op.Client }

func (client) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeDeviceCode, zoidc.GrantTypeRefreshToken}
}
func (client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (client) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (client) IDTokenLifetime() time.Duration       { return TokenLifetime }

// testUser is a User as the example storage knows it.
type testUser struct {
	storage.User
	groups []string
}

// userStore is storage.UserStore over the provider's users, by ID.
type userStore map[string]*testUser

func (s userStore) GetUserByID(id string) *storage.User {
	if u, ok := s[id]; ok {
		return &u.User
	}
	return nil
}

func (s userStore) GetUserByUsername(name string) *storage.User {
	for _, u := range s {
		if u.Username == name {
			return &u.User
		}
	}
	return nil
}

func (userStore) ExampleClientID() string { return "service" }
