package main

import (
	"context"

	"github.com/spf13/cobra"

	latchhttp "github.com/latchdev/latch/http"
)

// authOptions say how the server authenticates callers.
type authOptions struct{}

func (o *authOptions) flags(*cobra.Command) {}

func (o *authOptions) authenticator(context.Context, *app) (latchhttp.Authenticator, error) {
	return nil, usagef("no authentication method configured")
}

func (a *app) client(context.Context) (*latchhttp.Client, error) {
	return nil, usagef("no server configured")
}
