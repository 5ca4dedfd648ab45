package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
)

type grantOptions struct {
	sg, instance, ip, dur, reason, maxDur string
	// resolved is the instance --instance named, once looked up: the grant
	// may open in its next managed group when the first is full.
	resolved             latch.InstanceID
	ports                portFlags
	detach, json, direct bool
}

// portFlags are what a grant or request opens: --protocol, then --port
// for tcp and udp, or --type and --code for icmp and icmpv6.
type portFlags struct {
	protocol, port, icmpType, icmpCode string
}

func (p *portFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.protocol, "protocol", "tcp", "tcp, udp, icmp (IPv4 sources) or icmpv6 (IPv6 sources)")
	f.StringVar(&p.port, "port", "", "port or range FROM-TO, for tcp and udp (default 22)")
	f.StringVar(&p.icmpType, "type", "", "ICMP type for icmp and icmpv6, e.g. 8 (echo request; icmpv6: 128) (default all types)")
	f.StringVar(&p.icmpCode, "code", "", "ICMP code, with --type (default all codes)")
}

// parse checks the flags together: --port is refused for ICMP, which has
// types and codes, and --type and --code for tcp and udp.
func (p portFlags) parse() (latch.Protocol, latch.PortRange, error) {
	proto, err := latch.ParseProtocol(p.protocol)
	if err != nil {
		return "", latch.PortRange{}, err
	}
	if proto.IsICMP() {
		if p.port != "" {
			return "", latch.PortRange{}, latch.Invalidf("port", "--port %s does not apply to %s, which has types and codes, not ports; give --type TYPE (and --code CODE), or neither for all types", p.port, proto)
		}
		r, err := latch.ParseICMPTypeCode(p.icmpType, p.icmpCode)
		return proto, r, err
	}
	for _, f := range []struct{ name, val string }{{"type", p.icmpType}, {"code", p.icmpCode}} {
		if f.val != "" {
			return "", latch.PortRange{}, latch.Invalidf(f.name, "--%s is for icmp and icmpv6; %s opens ports: give --port", f.name, proto)
		}
	}
	port := p.port
	if port == "" {
		port = "22"
	}
	r, err := latch.ParsePorts(proto, port)
	return proto, r, err
}

func (a *app) grantCommand() *cobra.Command {
	var o grantOptions
	cmd := &cobra.Command{
		Use:   "grant --sg SG --ip IP|auto --for DURATION --reason TEXT",
		Short: "Open a security group to one address for a bounded time",
		Long: `Open one ingress rule in security group SG for one address, tagged with its
expiry, and record it in the grant database.

Without --detach, latch stays in the foreground with a countdown and revokes
the rule at expiry, when you press Ctrl-C or Ctrl-\, or when its terminal
closes (SIGINT, SIGQUIT, SIGHUP, SIGTERM). With --detach it returns at
once; 'latch run' (or any 'latch sweep') revokes the rule at expiry. If latch
is killed, the expiry tag on the rule still lets any sweep revoke it.

The source must be one address (IPv4 /32 or IPv6 /128); 0.0.0.0/0, ::/0
and every wider prefix are refused. --ip auto asks $LATCH_IP_ECHO_URL
(default https://checkip.amazonaws.com) for your public address.

Only groups tagged latch:managed=true are opened; --instance opens the
instance's one such group, as the server does. The grant records your AWS
identity (sts:GetCallerIdentity) as its requester.

The recipe's environment also works: SECURITY_GROUP_ID, ALLOWED_IP and
DURATION (in seconds) stand in for --sg, --ip and --for.

With a server configured (--server or LATCH_SERVER), grant is a request to
the server, decided by its policy, as 'latch request' is: --sg or
--instance is the target; the address is the one the server sees you at
(--ip ADDRESS only where the policy's networks allow it); --for defaults to
the policy's. It waits for approval, then holds the grant as above; with
--detach it returns at once and the server revokes at expiry. --direct opens
with your own AWS credentials instead, skipping the server and its policy.`,
		Example: `  latch grant --sg sg-0123456789abcdef0 --ip auto --for 30m --reason "hotfix INC-42"
  latch grant --instance web-1 --ip auto --for 30m --reason "hotfix INC-42"
  latch grant --sg sg-0123456789abcdef0 --ip 203.0.113.7 --port 8000-8080 --for 1h --reason test --detach --json
  latch grant --sg sg-0123456789abcdef0 --ip 2001:db8::7 --protocol icmpv6 --type 128 --for 15m --reason "ping test"
  LATCH_SERVER=https://latch.example.com:8443 latch grant --instance web-1 --reason "INC-42"           # through the server's policy
  LATCH_SERVER=https://latch.example.com:8443 latch grant --direct --sg sg-0123456789abcdef0 --ip auto --for 30m --reason "INC-42"`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.grant(cmd, &o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.sg, "sg", "", "security group ID to open (sg-…)")
	f.StringVar(&o.instance, "instance", "", "or an instance (i-… or its Name tag): opens its first group tagged latch:managed=true, or the next when that one is full")
	f.StringVar(&o.ip, "ip", "", "source address, or auto to detect your public address")
	o.ports.register(cmd)
	f.StringVar(&o.dur, "for", "", "how long, e.g. 30m (at most --max-duration)")
	f.StringVar(&o.reason, "reason", "", "why you need access (required, at most 256 characters)")
	f.StringVar(&o.maxDur, "max-duration", latch.DefaultMaxDuration.String(), "longest grant allowed")
	f.BoolVar(&o.detach, "detach", false, "return at once and leave revocation to 'latch run' or a sweep")
	f.BoolVar(&o.json, "json", false, "print JSON: one object when granted, one when it ends")
	f.BoolVar(&o.direct, "direct", false, "open with your own AWS credentials, even with a server configured (skips its policy)")
	a.addFlags(cmd, append([]flagGroup{serverFlags, dbFlags}, brokerFlags...)...)
	return cmd
}

func (a *app) grant(cmd *cobra.Command, o *grantOptions) error {
	ctx := cmd.Context()
	server, err := a.useServer(cmd, o.direct)
	if err != nil {
		return err
	}
	if !o.detach { // closing the terminal must revoke, not kill latch
		var stop context.CancelFunc
		ctx, stop = whileHolding(ctx)
		defer stop()
	}
	if server {
		return a.grantViaServer(ctx, cmd, o)
	}
	req, maxDur, err := a.grantRequest(ctx, o)
	if err != nil {
		return err
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	b, err := a.broker(ctx, store, a.regions[:1], maxDur)
	if err != nil {
		return err
	}
	var g latch.Grant
	if o.resolved != "" {
		g, err = b.GrantOnInstance(ctx, req, o.resolved, nil)
	} else {
		g, err = b.Grant(ctx, req)
	}
	if err != nil {
		return err
	}
	if err := a.showGrant(o.json, g); err != nil {
		return err
	}
	if o.detach {
		if !o.json {
			revoke := "latch revoke"
			if a.server != "" { // a plain revoke would ask the server
				revoke = "latch revoke --direct"
			}
			fmt.Fprintf(a.stdout, "\nDetached. 'latch run' or any 'latch sweep' revokes it at expiry; '%s %s' ends it now.\n", revoke, g.ID)
		}
		return nil
	}
	return a.holdGrant(ctx, b, g, o.json)
}

// holdGrant shows a countdown until g expires or ctx ends, then revokes.
func (a *app) holdGrant(ctx context.Context, b *broker.Broker, g latch.Grant, asJSON bool) error {
	interrupted := a.countdown(ctx, g)
	stop := context.WithoutCancel(ctx) // the signal that ended ctx must not stop the revoke
	var e broker.Ended
	var err error
	if interrupted {
		e, err = b.Revoke(stop, g.ID, g.Requester)
	} else {
		err = b.Expire(stop, g.ID)
		if err == nil {
			e.Grant, err = b.Get(stop, g.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("%w\nThe grant is recorded as ending; 'latch run' or 'latch sweep' will finish revoking it", err)
	}
	return a.showEnded(asJSON, e, modeJSON{}, eventEnded)
}

// The events of a command that reports over time (grant and request,
// held): each --json line names its event.
const (
	eventOpened  = "opened"  // the grant is open
	eventRequest = "request" // the request as it stands, and its grant once access started
	eventEnded   = "ended"   // the grant has ended
)

// grantEventJSON is a grant, opened or ended, as one line of a stream.
type grantEventJSON struct {
	Event         string                  `json:"event"`
	Grant         latchhttp.GrantJSON     `json:"grant"`
	RuleStaysOpen *latchhttp.RuleKeptJSON `json:"rule_stays_open,omitempty"`
}

func (a *app) showGrant(asJSON bool, g latch.Grant) error {
	if asJSON {
		return writeJSON(a.stdout, grantEventJSON{Event: eventOpened, Grant: latchhttp.ToGrantJSON(g)})
	}
	printGrant(a.stdout, g, a.clock.Now())
	return nil
}

// grantRequest turns flags (and the recipe's variables) into a request, or
// an EINVALID error naming the flag.
func (a *app) grantRequest(ctx context.Context, o *grantOptions) (latch.GrantRequest, time.Duration, error) {
	if err := a.recipeEnv(o); err != nil {
		return latch.GrantRequest{}, 0, err
	}
	switch {
	case o.sg != "" && o.instance != "":
		return latch.GrantRequest{}, 0, latch.Invalidf("instance", "give --sg or --instance, not both")
	case o.sg == "" && o.instance == "":
		return latch.GrantRequest{}, 0, latch.Invalidf("sg", "a security group is required: --sg sg-… (or SECURITY_GROUP_ID), or --instance i-…")
	case o.ip == "":
		return latch.GrantRequest{}, 0, latch.Invalidf("ip", "a source address is required: --ip ADDRESS, or --ip auto (or ALLOWED_IP)")
	case o.dur == "":
		return latch.GrantRequest{}, 0, latch.Invalidf("for", "a duration is required: --for 30m (or DURATION in seconds)")
	}
	maxDur, err := durationFlag("max-duration", o.maxDur)
	if err != nil {
		return latch.GrantRequest{}, 0, err
	}
	if maxDur <= 0 || maxDur%time.Second != 0 {
		return latch.GrantRequest{}, 0, latch.Invalidf("max-duration", "%q is not a positive whole number of seconds; want e.g. 1h (the default is %s)",
			o.maxDur, latch.DefaultMaxDuration)
	}
	return a.directGrantRequest(ctx, o, maxDur)
}

// recipeEnv fills --sg, --ip and --for from the recipe's variables.
func (a *app) recipeEnv(o *grantOptions) error {
	if o.sg == "" {
		o.sg = a.getenv("SECURITY_GROUP_ID")
	}
	if o.ip == "" {
		o.ip = a.getenv("ALLOWED_IP")
	}
	if o.dur == "" {
		if s := a.getenv("DURATION"); s != "" {
			secs, err := strconv.Atoi(s)
			if err != nil {
				return latch.Invalidf("for", "DURATION=%q is not a whole number of seconds", s)
			}
			o.dur = strconv.Itoa(secs) + "s"
		}
	}
	return nil
}

func (a *app) directGrantRequest(ctx context.Context, o *grantOptions, maxDur time.Duration) (latch.GrantRequest, time.Duration, error) {
	var err error
	req := latch.GrantRequest{Region: a.regions[0], Reason: o.reason, Requester: directRequesterPending}
	if o.instance == "" {
		if req.GroupID, err = latch.ParseGroupID(o.sg); err != nil {
			return req, 0, err
		}
	}
	if req.Protocol, req.Ports, err = o.ports.parse(); err != nil {
		return req, 0, err
	}
	if req.Duration, err = durationFlag("for", o.dur); err != nil {
		return req, 0, err
	}
	ip := o.ip
	if ip == "auto" {
		if ip, err = a.publicIP(ctx); err != nil {
			return req, 0, err
		}
	}
	if req.Source, err = latch.ParseSource(ip); err != nil {
		return req, 0, err
	}
	cfg, err := a.awsConfig(ctx, req.Region)
	if err != nil {
		return req, 0, err
	}
	if o.instance != "" {
		if !strings.HasPrefix(o.instance, "i-") && strings.HasPrefix(o.instance, "sg-") {
			return req, 0, latch.Invalidf("instance", "%q is a security group; give it with --sg", o.instance)
		}
		// The same resolution as the server's: the instance's first managed
		// group, and its others when that one is full.
		t, err := broker.ResolveTarget(ctx, latchaws.NewInventory(cfg, a.log.With("component", "aws")), req.Region, o.instance)
		if err != nil {
			return req, 0, err
		}
		req.GroupID, o.resolved = t.GroupID, t.InstanceID
	}
	if err := req.Validate(maxDur); err != nil {
		return req, 0, err
	}
	req.Requester, err = a.directRequester(ctx, cfg)
	return req, maxDur, err
}

// directRequesterPending stands in for the requester while the flags are
// checked, so bad input is refused before STS is asked.
const directRequesterPending = "(caller)"

// directActor names who ends access directly (revoke, reconcile --revert)
// in the audit log: the caller's AWS identity, as for a grant. Ending access
// must not wait on STS, so if STS cannot answer the local user is recorded,
// marked unverified, since anyone can set it.
func (a *app) directActor(ctx context.Context, region string) string {
	if cfg, err := a.awsConfig(ctx, region); err == nil {
		if arn, err := a.directRequester(ctx, cfg); err == nil {
			return arn
		}
	}
	return "unverified:" + a.localUser()
}

// directRequester is who a direct command acts for: the caller's AWS
// identity, as STS names it, normalised as policies name principals. It is
// what the store and the rule's latch:requester tag record. There is no
// fallback to $USER: a name the caller chose could be anyone's.
func (a *app) directRequester(ctx context.Context, cfg aws.Config) (string, error) {
	var signAt func() time.Time
	if a.stsAtClock {
		signAt = a.clock.Now
	}
	arn, err := latchaws.CallerARN(ctx, cfg, signAt)
	if err != nil {
		return "", latch.Errorf(latch.ErrorCode(err), "cannot tell who you are, so nothing was opened: %s; direct mode records your AWS identity as the requester (check --profile or AWS_ACCESS_KEY_ID)", latch.ErrorMessage(err))
	}
	return awsauth.NormalizeARN(arn)
}
