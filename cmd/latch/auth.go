package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/oidc"
)

// authOptions say how the server authenticates callers.
type authOptions struct {
	oidcIssuer, oidcAudience, oidcGroupsClaim, oidcSubjectClaim string
	awsAuth                                                     bool
	awsServerID                                                 string
	awsAccounts                                                 []string
	awsSTSHosts                                                 []string
}

func (o *authOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.oidcIssuer, "oidc-issuer", "", "accept ID tokens from this OpenID Connect issuer (URL)")
	f.StringVar(&o.oidcAudience, "oidc-audience", "", "the audience ID tokens must carry: latch's client ID at the issuer")
	f.StringVar(&o.oidcGroupsClaim, "oidc-groups-claim", oidc.DefaultGroupsClaim, "the token claim that lists the caller's groups")
	f.StringVar(&o.oidcSubjectClaim, "oidc-subject-claim", oidc.DefaultSubjectClaim, "the token claim that keys each person; only a claim the issuer keeps stable (a token without it is refused)")
	f.BoolVar(&o.awsAuth, "aws-auth", false, "accept AWS IAM identities (a presigned sts:GetCallerIdentity)")
	f.StringSliceVar(&o.awsAccounts, "aws-account", nil, "with --aws-auth, required: an AWS account (12 digits) whose identities are accepted; repeat or comma-separate for several")
	f.StringVar(&o.awsServerID, "aws-server-id", "", "the ID clients sign into AWS proofs, so proofs for another server are refused (default: --url)")
	f.StringSliceVar(&o.awsSTSHosts, "aws-sts-host", nil, "STS endpoints proofs may address besides AWS's own (e.g. a simulator's http://127.0.0.1:4566)")
}

// byScheme sends each request to the authenticator for its scheme.
type byScheme map[string]latchhttp.Authenticator

func (s byScheme) Authenticate(r *http.Request) (latch.Identity, error) {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if a, ok := s[strings.ToLower(scheme)]; ok {
		return a.Authenticate(r)
	}
	var want []string
	for k := range s {
		want = append(want, k)
	}
	return latch.Identity{}, latch.Errorf(latch.EUNAUTHENTICATED,
		"no credentials: send Authorization with one of %v ('latch login' for OIDC, or --auth aws)", want)
}

// check refuses bad authentication flags, before the server binds or
// opens anything.
func (o *authOptions) check() error {
	if (o.oidcIssuer == "") != (o.oidcAudience == "") {
		return latch.Invalidf("oidc-issuer", "--oidc-issuer and --oidc-audience go together")
	}
	if o.oidcIssuer == "" && !o.awsAuth {
		return latch.Invalidf("aws-auth", "no way to authenticate callers: give --oidc-issuer and --oidc-audience, or --aws-auth")
	}
	if !o.awsAuth {
		return nil
	}
	if len(o.awsAccounts) == 0 {
		return latch.Invalidf("aws-account", "--aws-auth needs the AWS accounts whose identities to accept, or anyone with an AWS account could call: give --aws-account with an account ID (12 digits), once per account")
	}
	for _, acct := range o.awsAccounts {
		if !awsauth.IsAccountID(acct) {
			return latch.Invalidf("aws-account", "%q is not an AWS account ID: want 12 digits, e.g. 123456789012", acct)
		}
	}
	if o.awsServerID != "" {
		if _, err := awsauth.ServerID(o.awsServerID); err != nil {
			return latch.Invalidf("aws-server-id", "%s", latch.ErrorMessage(err))
		}
	}
	return nil
}

// authenticator builds what check allowed. AWS proofs must name serverID,
// and are recorded in used so that each is accepted once.
func (o *authOptions) authenticator(ctx context.Context, serverID string, used awsauth.UsedProofs) (latchhttp.Authenticator, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	auth := byScheme{}
	if o.oidcIssuer != "" {
		v, err := oidc.NewVerifier(ctx, oidc.Config{Issuer: o.oidcIssuer, Audience: o.oidcAudience,
			GroupsClaim: o.oidcGroupsClaim, SubjectClaim: o.oidcSubjectClaim})
		if err != nil {
			return nil, err
		}
		auth["bearer"] = v
	}
	if o.awsAuth {
		auth["latchaws"] = &awsauth.Verifier{ServerID: serverID, Accounts: o.awsAccounts, Used: used, TrustedHosts: o.trustedSTS()}
	}
	return auth, nil
}

// trustedSTS is nil (AWS's own endpoints) unless extra hosts are named, in
// which case AWS's stay trusted too.
func (o *authOptions) trustedSTS() []string {
	if len(o.awsSTSHosts) == 0 {
		return nil
	}
	return append([]string{"sts.amazonaws.com", "sts.us-east-1.amazonaws.com"}, o.awsSTSHosts...)
}

// client returns an API client for $LATCH_SERVER with the caller's
// credentials.
func (a *app) client(ctx context.Context) (*latchhttp.Client, error) {
	if a.server == "" {
		return nil, latch.Invalidf("server", "no latch server: set LATCH_SERVER or --server to its URL")
	}
	c := &latchhttp.Client{URL: a.server}
	base := http.DefaultTransport.(*http.Transport).Clone()
	c.HTTP = &http.Client{Timeout: time.Minute, Transport: hintCA{base}}
	if a.serverCA != "" {
		pem, err := os.ReadFile(a.serverCA)
		if err != nil {
			return nil, latch.Invalidf("server-ca", "read %s: %v", a.serverCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, latch.Invalidf("server-ca", "%s holds no PEM certificate", a.serverCA)
		}
		base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	method := a.authMethod
	if method == "auto" {
		method = "aws"
		if _, err := os.Stat(a.tokenPath()); err == nil {
			method = "oidc"
		}
	}
	switch method {
	case "oidc":
		c.Creds = a.oidcCredentials
	case "aws":
		// The proof names the server it is for: the URL this client
		// reaches it by, unless told the server's own ID.
		flag, id := "server-id", a.serverID
		if id == "" {
			flag, id = "server", a.server
		}
		id, err := awsauth.ServerID(id)
		if err != nil {
			return nil, latch.Invalidf(flag, "%s", latch.ErrorMessage(err))
		}
		cfg, err := a.awsConfig(ctx, a.regions[0])
		if err != nil {
			return nil, err
		}
		c.Creds = func(ctx context.Context) (string, error) { return awsauth.Header(ctx, cfg, id) }
	default:
		return nil, latch.Invalidf("auth", "%q is not a way to authenticate; want oidc, aws or auto", a.authMethod)
	}
	return c, nil
}

// hintCA says how to trust a server whose certificate is signed by an
// authority this machine does not know.
type hintCA struct{ http.RoundTripper }

func (h hintCA) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.RoundTripper.RoundTrip(r)
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return nil, fmt.Errorf("its certificate is signed by an authority this machine does not trust (%w); "+
			"give that authority's certificate with --server-ca FILE (or LATCH_SERVER_CA)", err)
	}
	return resp, err
}

// tokenPath is where 'latch login' keeps the ID token.
func (a *app) tokenPath() string {
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		dir = filepath.Join(a.getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "latch", "token.json")
}

// oidcCredentials sends the cached ID token, refreshing it when it has
// expired and a refresh token allows.
func (a *app) oidcCredentials(ctx context.Context) (string, error) {
	path := a.tokenPath()
	tok, err := oidc.LoadToken(path)
	if err == nil {
		return "Bearer " + tok.IDToken, nil
	}
	if tok.RefreshToken == "" {
		// The loader's message says what is wrong and to run latch login.
		return "", latch.Errorf(latch.EUNAUTHENTICATED, "%s, or use your AWS credentials with --auth aws", latch.ErrorMessage(err))
	}
	tok, err = oidc.Refresh(ctx, oidc.LoginConfig{Issuer: tok.Issuer, ClientID: tok.ClientID}, tok)
	if err != nil {
		return "", latch.Errorf(latch.EUNAUTHENTICATED, "your login expired and could not be refreshed (%s); run 'latch login'", latch.ErrorMessage(err))
	}
	if err := oidc.SaveToken(path, tok); err != nil {
		return "", err
	}
	return "Bearer " + tok.IDToken, nil
}
