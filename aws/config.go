package aws

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Config says how to reach AWS. Empty fields fall back to the SDK's own
// defaults (environment, shared config, instance role).
type Config struct {
	Region   string
	Profile  string
	Endpoint string // a base endpoint URL, e.g. a simulator; "" for AWS itself

	// Static credentials, used when AccessKeyID is set.
	AccessKeyID, SecretAccessKey, SessionToken string

	MaxAttempts int           // per call, including the first; 0 means DefaultMaxAttempts
	MaxBackoff  time.Duration // longest wait between attempts; 0 means DefaultMaxBackoff

	// Mutating paces mutating EC2 calls (see ratelimit.go); nil sends them
	// unpaced. Pass one Limiter to every region's Config.
	Mutating *Limiter
}

// Retry defaults. EC2 throttles per account and region with a token bucket;
// more attempts with a short cap ride out bursts, and the revoker's own
// backoff takes over after that.
const (
	DefaultMaxAttempts = 8
	DefaultMaxBackoff  = 5 * time.Second
)

// LoadConfig builds the SDK configuration for one region.
func LoadConfig(ctx context.Context, c Config) (aws.Config, error) {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(c.Region),
		config.WithRetryer(func() aws.Retryer { return Retryer(c.MaxAttempts, c.MaxBackoff) }),
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if c.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.Mutating != nil {
		c.Mutating.Install(&cfg)
	}
	return cfg, nil
}

// Retryer is the SDK's standard retryer with latch's limits. Its client-side
// retry quota is off: for revocation, giving up early is worse than
// retrying into a throttle, and the backoff already spaces attempts.
func Retryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.RateLimiter = ratelimit.None
	})
}
