package metrics

import (
	"context"
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// retryID is the ID of the SDK's retry loop in the Finalize step
// ((*retry.Attempt).ID()). Every generated client adds it; presign clients
// remove it.
const retryID = "Retry"

// AWSMiddleware returns a stack option for aws.Config.APIOptions (or a
// client's Options.APIOptions) that counts every AWS API call made through
// that config:
//
//   - latch_aws_calls_total once per operation call, however often the SDK
//     retries it;
//   - latch_aws_attempts_total once per attempt, in the SDK's retry loop;
//   - latch_aws_errors_total once per failed call, with its final error's
//     code: the AWS error code (as smithy.APIError's ErrorCode), "canceled"
//     (the context ended), "network" (no response) or "other" (anything
//     else, such as missing credentials).
//
// Labels service and operation are the SDK's service ID and operation name
// ("EC2", "RevokeSecurityGroupIngress"). Presigning sends nothing, so it is
// not counted.
func (m *Metrics) AWSMiddleware() func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		if _, ok := stack.Finalize.Get(retryID); !ok {
			// A presign stack: the request is signed and handed back, not sent.
			return nil
		}
		if err := stack.Initialize.Add(callCounter{m}, middleware.Before); err != nil {
			return err
		}
		return stack.Finalize.Insert(attemptCounter{m}, retryID, middleware.After)
	}
}

// callCounter runs first in the Initialize step, so it sees each call once
// and its final error.
type callCounter struct{ m *Metrics }

func (callCounter) ID() string { return "latch/metrics.Calls" }

func (c callCounter) HandleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
	middleware.InitializeOutput, middleware.Metadata, error,
) {
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	c.m.awsCalls.WithLabelValues(service, op).Inc()
	out, md, err := next.HandleInitialize(ctx, in)
	if err != nil {
		c.m.awsErrors.WithLabelValues(service, op, errorCode(err)).Inc()
	}
	return out, md, err
}

// attemptCounter runs inside the retry loop, so it sees each attempt.
type attemptCounter struct{ m *Metrics }

func (attemptCounter) ID() string { return "latch/metrics.Attempts" }

func (a attemptCounter) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	a.m.awsAttempts.WithLabelValues(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)).Inc()
	return next.HandleFinalize(ctx, in)
}

// errorCode names the cause of a failed call for latch_aws_errors_total.
// An answer from AWS wins: after retries run out, the error wraps the last
// answer.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != "" {
		return apiErr.ErrorCode()
	}
	var (
		canceled    *smithy.CanceledError
		awsCanceled *aws.RequestCanceledError
	)
	if errors.As(err, &canceled) || errors.As(err, &awsCanceled) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "canceled"
	}
	var (
		sendErr *smithyhttp.RequestSendError
		netErr  net.Error
	)
	if errors.As(err, &sendErr) || errors.As(err, &netErr) {
		return "network"
	}
	return "other"
}
