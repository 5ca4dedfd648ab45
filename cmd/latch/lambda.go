package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/lambda"
	"github.com/latchdev/latch/policy"
)

func (a *app) lambdaCommand() *cobra.Command {
	var policyFile, eventFile, maxDur, ports string
	cmd := &cobra.Command{
		Use:   "lambda",
		Short: "Run as an AWS Lambda function (the bootstrap of a provided.al2023 function)",
		Long: `Serve Lambda invocations: the sweep schedule's events, direct invokes with
the recipe's configuration (SECURITY_GROUP_ID, ALLOWED_IP, DURATION), and,
with --policy (or LATCH_POLICY), function URL requests with AWS_IAM auth.

No policy decides a direct invoke, so it is bounded by --max-duration
(LATCH_MAX_DURATION, default 1h) and --ports (LATCH_PORTS, default tcp/22);
an invoke asking for more is refused, naming what it asked and what is
allowed. Lambda does not tell the function who invoked it, so direct
grants record the requester "lambda-invoke" (CloudTrail's Invoke data
event names the caller). Function URL requests record the caller's ARN.
Every grant, however it came, opens only groups tagged latch:managed=true.

Nothing sleeps: each grant's backstop schedule (--backstop-role-arn) and
the sweep revoke it, so grants may last longer than Lambda's 15 minutes.
The grant database lives in /tmp and may be lost between invocations; the
rule's tags and its schedule are what revoke it.`,
		Example: `  latch lambda                                # as the function's bootstrap: serve invocations
  echo '{"latch":"sweep"}' | latch lambda --event -   # handle one event here, as Lambda would
  latch lambda --policy policy.yaml --backstop-role-arn arn:aws:iam::123456789012:role/latch-scheduler`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			limits, err := lambdaLimits(maxDur, ports)
			if err != nil {
				return err
			}
			h, err := a.lambdaHandler(cmd.Context(), policyFile, limits)
			if err != nil {
				return err
			}
			if eventFile != "" {
				return a.invokeOnce(cmd.Context(), h, eventFile)
			}
			awslambda.StartWithOptions(h.Invoke, awslambda.WithContext(cmd.Context()))
			return nil
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file for function URL requests (none: URL requests are refused)")
	cmd.Flags().StringVar(&maxDur, "max-duration", lambda.DefaultMaxDuration.String(), "longest grant a direct invoke may open (at most "+policy.DurationCap.String()+")")
	cmd.Flags().StringVar(&ports, "ports", lambda.FormatPorts(lambda.DefaultPorts), "TCP ports a direct invoke may open: tcp/PORT or tcp/FROM-TO, comma-separated")
	cmd.Flags().StringVar(&eventFile, "event", "", "handle this one event (a JSON file, - for standard input) here and print the result, instead of serving Lambda")
	a.addFlags(cmd, append([]flagGroup{dbFlags}, brokerFlags...)...)
	return cmd
}

// lambdaLimits reads the direct invoke's limits from their flags.
func lambdaLimits(maxDur, ports string) (lambda.Limits, error) {
	d, err := durationFlag("max-duration", maxDur)
	if err != nil {
		return lambda.Limits{}, err
	}
	if d <= 0 || d > policy.DurationCap || d%time.Second != 0 {
		return lambda.Limits{}, latch.Invalidf("max-duration", "%s is not allowed; want whole seconds, more than 0 and at most %s", maxDur, policy.DurationCap)
	}
	ps, err := lambda.ParsePorts(ports)
	if err != nil {
		return lambda.Limits{}, err
	}
	return lambda.Limits{MaxDuration: d, Ports: ps}, nil
}

// lambdaHandler wires the handler from flags and the environment.
func (a *app) lambdaHandler(ctx context.Context, policyFile string, limits lambda.Limits) (*lambda.Handler, error) {
	if a.dbPath == "" {
		a.dbPath = filepath.Join(os.TempDir(), "latch.db") // Lambda's only writable place
	}
	store, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	b, err := a.broker(ctx, store, a.regions, policy.DurationCap)
	if err != nil {
		return nil, err
	}
	fws, err := a.firewalls(ctx, a.regions)
	if err != nil {
		return nil, err
	}
	h := &lambda.Handler{Broker: b, Firewalls: fws, Region: a.regions[0], Limits: limits, Clock: a.clock, Log: a.log.With("component", "lambda"),
		Recipe: lambda.Recipe{SecurityGroupID: a.getenv("SECURITY_GROUP_ID"), AllowedIP: a.getenv("ALLOWED_IP"), Duration: a.getenv("DURATION")}}
	if h.Sessions, err = a.sessionManagers(ctx, a.regions); err != nil {
		return nil, err
	}
	if policyFile != "" {
		p, err := policy.Load(policyFile)
		if err != nil {
			return nil, err
		}
		holder := &policyHolder{}
		holder.p.Store(p)
		inv, err := a.inventories(ctx)
		if err != nil {
			return nil, err
		}
		h.Access = broker.NewAccess(b, store, holder, inv, broker.AccessOptions{Clock: a.clock, Logger: a.log.With("component", "access"), DefaultRegion: a.regions[0]})
	}
	return h, nil
}

// invokeOnce handles one event locally, as Lambda would, and prints the
// result.
func (a *app) invokeOnce(ctx context.Context, h *lambda.Handler, file string) error {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(a.stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return latch.Invalidf("event", "read %s: %v", file, err)
	}
	out, err := h.Invoke(ctx, json.RawMessage(data))
	if err != nil {
		return err
	}
	return writeJSON(a.stdout, out)
}
