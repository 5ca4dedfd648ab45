package main

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/oidc"
)

type loginOptions struct {
	issuer, clientID, method string
	noBrowser                bool
}

func (a *app) loginCommand() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login --oidc-issuer URL --oidc-client-id ID",
		Short: "Log in with your identity provider (OIDC) for the latch server",
		Long: `Get an ID token from your OpenID Connect provider and keep it, with mode
0600, in $XDG_CONFIG_HOME/latch/token.json for client commands to send.

The device flow (default) prints a URL and a code to enter in any browser;
--method pkce opens a browser here and listens on 127.0.0.1 for the answer.`,
		Example: "  LATCH_OIDC_ISSUER=https://idp.example.com LATCH_OIDC_CLIENT_ID=latch latch login",
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.login(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.issuer, "oidc-issuer", "", "your OpenID Connect issuer URL")
	f.StringVar(&o.clientID, "oidc-client-id", "", "latch's client ID at the issuer")
	f.StringVar(&o.method, "method", oidc.MethodDevice, "device or pkce")
	f.BoolVar(&o.noBrowser, "no-browser", false, "with pkce: print the URL instead of opening a browser")
	// With a server, login asks it who you are, with the new token: the
	// server's URL and CA, but no other way to authenticate.
	a.addFlags(cmd, flagGroup{serverFlags.title, []string{"server", "server-ca"}})
	return cmd
}

func (a *app) login(ctx context.Context, o loginOptions) error {
	if o.issuer == "" || o.clientID == "" {
		return latch.Invalidf("oidc-issuer", "--oidc-issuer and --oidc-client-id are required (or LATCH_OIDC_ISSUER, LATCH_OIDC_CLIENT_ID)")
	}
	cfg := oidc.LoginConfig{Issuer: o.issuer, ClientID: o.clientID, Method: o.method, Out: a.stderr, Open: a.openBrowser(o.noBrowser)}
	tok, err := oidc.Login(ctx, cfg)
	if err != nil {
		return err
	}
	cached, err := oidc.NewCachedToken(cfg, tok)
	if err != nil {
		return err
	}
	if err := oidc.SaveToken(a.tokenPath(), cached); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Logged in to %s; token saved to %s (valid until %s).\n", o.issuer, a.tokenPath(), latch.FormatExpiry(cached.Expiry))
	if a.server == "" {
		return nil
	}
	saved := a.authMethod
	a.authMethod = "oidc"
	defer func() { a.authMethod = saved }()
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	who, err := c.Login(ctx)
	if err != nil {
		return fmt.Errorf("the login worked, but %s refused it: %w", a.server, err)
	}
	fmt.Fprintf(a.stdout, "%s knows you as %s (%s %s).\n", esc(a.server), esc(who.Display), esc(who.Kind), esc(who.Subject))
	return nil
}

// openBrowser opens a URL for the PKCE flow; Login has already printed it.
func (a *app) openBrowser(printOnly bool) func(string) error {
	return func(url string) error {
		if printOnly {
			return nil
		}
		opener := "xdg-open"
		if runtime.GOOS == "darwin" {
			opener = "open"
		}
		if err := exec.Command(opener, url).Start(); err != nil {
			fmt.Fprintf(a.stderr, "(could not start %s: %v; open it yourself)\n", opener, err)
		}
		return nil
	}
}
