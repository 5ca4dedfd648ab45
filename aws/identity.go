package aws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// CallerARN asks STS who cfg's credentials belong to
// (sts:GetCallerIdentity, which needs no IAM permission) and returns the
// ARN it names. Direct grants record it as their requester. Returns
// EUNAUTHENTICATED when STS does not accept the credentials, EUNAVAILABLE
// when it cannot be reached; either in one line.
//
// signAt, if not nil, is the signing time (tests whose simulated STS runs
// on a fake clock); nil signs at the SDK's own time.
func CallerARN(ctx context.Context, cfg aws.Config, signAt func() time.Time) (string, error) {
	var opts []func(*sts.Options)
	if signAt != nil {
		opts = append(opts, func(o *sts.Options) { o.HTTPSignerV4 = signerAt{v4.NewSigner(), signAt} })
	}
	out, err := sts.NewFromConfig(cfg, opts...).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err == nil && aws.ToString(out.Arn) == "" {
		err = errors.New("STS returned no ARN")
	}
	if err == nil {
		return aws.ToString(out.Arn), nil
	}
	const op = "sts:GetCallerIdentity"
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return "", latch.Errorf(latch.EUNAUTHENTICATED, "%s: %s: %s", op, apiErr.ErrorCode(), strings.TrimSuffix(apiErr.ErrorMessage(), "."))
	}
	if netErr, ok := errors.AsType[*net.OpError](err); ok {
		return "", latch.Errorf(latch.EUNAVAILABLE, "%s: cannot reach STS: %v", op, netErr)
	}
	return "", latch.Errorf(latch.EUNAVAILABLE, "%s: %v", op, err)
}

// signerAt signs with SigV4 at the time its clock says.
type signerAt struct {
	v4  *v4.Signer
	now func() time.Time
}

func (s signerAt) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) error {
	return s.v4.SignHTTP(ctx, creds, r, payloadHash, service, region, s.now(), optFns...)
}
