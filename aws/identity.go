package aws

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// CallerARN asks STS who cfg's credentials belong to
// (sts:GetCallerIdentity, which needs no IAM permission) and returns the
// ARN it names. Direct grants record it as their requester. Returns
// EUNAUTHENTICATED when STS does not accept the credentials, EUNAVAILABLE
// when it cannot be reached; either in one line.
func CallerARN(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
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
