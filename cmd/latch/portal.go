package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/oidc"
	"github.com/latchdev/latch/portal"
	"github.com/latchdev/latch/reconcile"
)

// portalOptions configure the browser portal the server serves at /.
type portalOptions struct {
	enabled              bool
	clientID, secretFile string
	url                  string
}

func (o *portalOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.enabled, "portal", true, "serve the browser portal at / (with --oidc-issuer; people sign in there with the issuer)")
	f.StringVar(&o.clientID, "portal-client-id", "", "the portal's client ID at the OIDC issuer (default: --oidc-audience, a public client using PKCE)")
	f.StringVar(&o.secretFile, "portal-client-secret-file", "", "a file holding the portal's client secret, for a confidential client (default: none, PKCE alone)")
	f.StringVar(&o.url, "portal-url", "", "the URL browsers reach the portal by; the issuer redirects to it + "+portal.CallbackPath+" (default: --url, else from --listen)")
}

// handler returns the portal for the server, or nil when it is off or the
// server accepts no OIDC sign-in.
func (o *portalOptions) handler(ctx context.Context, so serverOptions, access *broker.Access, ln net.Listener, tls bool,
	prove proveFunc, clock latch.Clock, log *slog.Logger) (http.Handler, error) {
	if !o.enabled || so.auth.oidcIssuer == "" {
		if o.enabled {
			log.Info("no portal: it signs people in with an OIDC issuer, and none is configured (--oidc-issuer)")
		}
		return nil, nil
	}
	cfg := oauth2.Config{ClientID: o.clientID}
	if cfg.ClientID == "" {
		cfg.ClientID = so.auth.oidcAudience
	}
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return nil, latch.Invalidf("portal-client-secret-file", "read %s: %v", o.secretFile, err)
		}
		cfg.ClientSecret = strings.TrimSpace(string(b))
	}
	base := o.url
	if base == "" {
		base = so.url
	}
	if base == "" {
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			return nil, latch.Invalidf("portal-url", "--listen %s is every interface, so latch cannot tell the URL browsers use: give --portal-url or --url", so.listen)
		}
		scheme := "http"
		if tls {
			scheme = "https"
		}
		base = scheme + "://" + net.JoinHostPort(host, port)
	}
	v, err := oidc.NewVerifier(ctx, oidc.Config{Issuer: so.auth.oidcIssuer, Audience: cfg.ClientID,
		GroupsClaim: so.auth.oidcGroupsClaim, SubjectClaim: so.auth.oidcSubjectClaim})
	if err != nil {
		return nil, err
	}
	cfg.Endpoint = v.Endpoint()
	p, err := portal.New(portal.Config{Access: access, Verifier: v, OAuth: cfg, URL: base, ClientAddr: latchhttp.ClientAddr,
		AWSAuth: so.auth.awsAuth, Prove: prove, Clock: clock, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("portal", "url", base, "client_id", cfg.ClientID, "confidential", cfg.ClientSecret != "")
	return p.Handler(), nil
}

type proveFunc = func(ctx context.Context, g latch.Grant, history []latch.GrantEvent) (reconcile.Proof, error)

// portalProof is a grant page's CloudTrail proof, read with the server's
// own AWS configuration in the grant's region, as latch audit proof reads
// it. Without cloudtrail:LookupEvents the page says the proof is
// unavailable.
func (a *app) portalProof() proveFunc {
	return func(ctx context.Context, g latch.Grant, history []latch.GrantEvent) (reconcile.Proof, error) {
		cfg, err := a.awsConfig(ctx, g.Region)
		if err != nil {
			return reconcile.Proof{}, err
		}
		return reconcile.Prove(ctx, trailEvents{latchaws.NewTrail(cfg)}, grantHistory(history), g, a.clock.Now())
	}
}

// grantHistory is a grant's history, already read, as reconcile.Prove
// reads it.
type grantHistory []latch.GrantEvent

func (h grantHistory) History(context.Context, latch.GrantID) ([]latch.GrantEvent, error) {
	return h, nil
}
