package aws

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// Limit is a client-side token bucket: Rate calls a second, after a burst
// of Burst.
type Limit struct {
	Rate  float64
	Burst int
}

// DefaultMutatingLimit paces latch's mutating EC2 calls below EC2's
// documented request buckets ("Request throttling for the Amazon EC2
// API", docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
// AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress are
// resource-intensive actions, 50 tokens refilled at 5 a second; other
// mutating actions (ModifySecurityGroupRules, …) the same; CreateTags and
// DeleteTags 100 at 10. 4 a second after a burst of 40 stays under all
// of them, with room for other clients of the account.
var DefaultMutatingLimit = Limit{Rate: 4, Burst: 40}

// Unlimited turns pacing off.
var Unlimited = Limit{Rate: math.Inf(1)}

// ParseLimit reads a limit written RATE/BURST ("4/40": 4 calls a second
// after a burst of 40), RATE alone (a burst of ten seconds' worth), or
// "off".
func ParseLimit(s string) (Limit, error) {
	if strings.EqualFold(strings.TrimSpace(s), "off") {
		return Unlimited, nil
	}
	rs, bs, hasBurst := strings.Cut(strings.TrimSpace(s), "/")
	r, err := strconv.ParseFloat(rs, 64)
	if err != nil || r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return Limit{}, fmt.Errorf("rate %q: want calls per second above 0, as RATE/BURST (e.g. %s) or off", s, DefaultMutatingLimit)
	}
	l := Limit{Rate: r, Burst: max(1, int(math.Ceil(10*r)))}
	if hasBurst {
		b, err := strconv.Atoi(bs)
		if err != nil || b < 1 {
			return Limit{}, fmt.Errorf("burst %q in %q: want a whole number, at least 1, as RATE/BURST (e.g. %s)", bs, s, DefaultMutatingLimit)
		}
		l.Burst = b
	}
	return l, nil
}

// String writes l as ParseLimit reads it.
func (l Limit) String() string {
	if math.IsInf(l.Rate, 1) {
		return "off"
	}
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + "/" + strconv.Itoa(l.Burst)
}

// Set parses s as ParseLimit does; with String and Type it makes *Limit a
// command-line flag (pflag.Value).
func (l *Limit) Set(s string) error {
	v, err := ParseLimit(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Type names the flag's value in help.
func (l *Limit) Type() string { return "RATE/BURST" }

// Limiter paces mutating EC2 calls so that a burst (thousands of revokes
// at once) waits on the client instead of tripping RequestLimitExceeded,
// which the SDK would retry with backoff and which throttles every other
// client of the account too. It keeps one bucket per region and API class
// (see apiClass), each at its Limit. Share one Limiter among all the
// configs of a process ([Config].Mutating), so they draw on the same
// buckets as EC2 does. It is safe for concurrent use.
type Limiter struct {
	limit   Limit
	mu      sync.Mutex
	buckets map[string]*rate.Limiter // by region and class
}

// NewLimiter returns a limiter whose buckets pace at l.
func NewLimiter(l Limit) *Limiter {
	return &Limiter{limit: l, buckets: map[string]*rate.Limiter{}}
}

// Limit returns the limiter's pace.
func (l *Limiter) Limit() Limit { return l.limit }

// Wait blocks until a call of EC2's action in region may be sent, or ctx
// ends. Non-mutating actions never wait.
func (l *Limiter) Wait(ctx context.Context, region, action string) error {
	class := apiClass(action)
	if class == "" || math.IsInf(l.limit.Rate, 1) {
		return nil
	}
	l.mu.Lock()
	b, ok := l.buckets[region+"/"+class]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.limit.Rate), max(l.limit.Burst, 1))
		l.buckets[region+"/"+class] = b
	}
	l.mu.Unlock()
	// Reserve rather than b.Wait, whose errors do not wrap ctx's.
	r := b.Reserve()
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.Cancel()
		return fmt.Errorf("wait %v for EC2 %s's rate limit in %s: %w", d.Round(time.Millisecond), action, region, context.DeadlineExceeded)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return fmt.Errorf("wait for EC2 %s's rate limit in %s: %w", action, region, context.Cause(ctx))
	}
}

// apiClass is the class of EC2's request throttling whose bucket action
// draws on, as latch paces it; "" for non-mutating actions. EC2 gives
// each API its own bucket; latch paces revokes and authorizes apart, as
// EC2 does, so that a stream of grants never holds a revoke back, and the
// other mutating calls by class, which keeps the client under EC2 either
// way.
func apiClass(action string) string {
	for _, prefix := range []string{"Describe", "Get", "List", "Search"} {
		if strings.HasPrefix(action, prefix) {
			return ""
		}
	}
	switch action {
	case "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress":
		return action
	case "CreateTags", "DeleteTags":
		return "tags"
	}
	return "mutating"
}

// Install makes every EC2 call of clients built from cfg wait on l, once
// per attempt (each retry also spends one of EC2's tokens), before the
// request is signed, so a long wait never sends a stale signature.
func (l *Limiter) Install(cfg *aws.Config) {
	cfgRegion := cfg.Region
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		mw := middleware.FinalizeMiddlewareFunc("latchMutatingLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetServiceID(ctx) == "EC2" {
					region := cmp.Or(awsmiddleware.GetRegion(ctx), cfgRegion)
					if err := l.Wait(ctx, region, awsmiddleware.GetOperationName(ctx)); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
				}
				return next.HandleFinalize(ctx, in)
			})
		if _, ok := st.Finalize.Get("Retry"); ok {
			return st.Finalize.Insert(mw, "Retry", middleware.After)
		}
		return st.Finalize.Add(mw, middleware.Before)
	})
}
