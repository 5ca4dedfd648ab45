package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
	latchhttp "github.com/latchdev/latch/http"
)

// authOptions say how the server authenticates callers.
type authOptions struct {
	awsAuth     bool
	awsServerID string
	awsSTSHosts []string
}

func (o *authOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.awsAuth, "aws-auth", false, "accept AWS IAM identities (a presigned sts:GetCallerIdentity)")
	f.StringVar(&o.awsServerID, "aws-server-id", "latch", "the name clients sign into AWS proofs, so proofs for another server are refused")
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

func (o *authOptions) authenticator(_ context.Context, _ *app) (latchhttp.Authenticator, error) {
	auth := byScheme{}
	if o.awsAuth {
		auth["latchaws"] = &awsauth.Verifier{ServerID: o.awsServerID, TrustedHosts: o.trustedSTS()}
	}
	if len(auth) == 0 {
		return nil, latch.Invalidf("aws-auth", "no way to authenticate callers: give --oidc-issuer and --oidc-audience, or --aws-auth")
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
	switch a.authMethod {
	case "aws":
		cfg, err := a.awsConfig(ctx, a.regions[0])
		if err != nil {
			return nil, err
		}
		c.Creds = func(ctx context.Context) (string, error) { return awsauth.Header(ctx, cfg, a.serverID) }
	default:
		return nil, latch.Invalidf("auth", "%q is not a way to authenticate; want aws", a.authMethod)
	}
	return c, nil
}
