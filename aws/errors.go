package aws

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// errRuleExists and errRuleGone are the two EC2 answers that idempotent
// callers treat as success.
var (
	errRuleExists = errors.New("rule already exists")
	errRuleGone   = errors.New("rule does not exist")
)

func isRuleExists(err error) bool { return errors.Is(err, errRuleExists) }
func isRuleGone(err error) bool   { return errors.Is(err, errRuleGone) }

// translate turns an EC2 error into latch's vocabulary. It is the only place
// in latch that knows EC2 error codes.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	apiErr, ok := errors.AsType[smithy.APIError](err)
	if !ok {
		return oneLine{op, err}
	}
	msg := apiErr.ErrorMessage()
	switch apiErr.ErrorCode() {
	case "InvalidPermission.Duplicate":
		return fmt.Errorf("%s: %w", op, errRuleExists)
	case "InvalidPermission.NotFound", "InvalidSecurityGroupRuleId.NotFound", "InvalidGroup.NotFound":
		// ENOTFOUND for callers that report it; errRuleGone for Revoke,
		// which counts it as done.
		return notFound{latch.Errorf(latch.ENOTFOUND, "%s: %s", op, msg)}
	case "InvalidGroupId.Malformed", "InvalidSecurityGroupRuleId.Malformed", "InvalidParameterValue", "MissingParameter":
		return latch.Errorf(latch.EINVALID, "%s: %s", op, msg)
	case "RulesPerSecurityGroupLimitExceeded":
		return groupFull{latch.Errorf(latch.ECONFLICT, "%s: the security group has no room for another rule (%s); end other grants or raise quota L-0EA8095F", op, msg)}
	case "UnauthorizedOperation", "AuthFailure":
		return latch.Errorf(latch.EFORBIDDEN, "%s: AWS refused: %s", op, msg)
	default:
		// Throttling and 5xx: the SDK's retryer already tried; the caller's
		// own backoff (the revoker) tries again later.
		return latch.Errorf(latch.EUNAVAILABLE, "%s: %s: %s", op, apiErr.ErrorCode(), msg)
	}
}

// apiCode is the AWS error code in err's chain, "" when there is none.
func apiCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}

// translateLookup is translate for Describe calls, where EC2 also answers
// NotFound for unknown instances.
func translateLookup(op string, err error) error {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok && apiErr.ErrorCode() == "InvalidInstanceID.NotFound" {
		return latch.Errorf(latch.ENOTFOUND, "%s: %s", op, apiErr.ErrorMessage())
	}
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok && apiErr.ErrorCode() == "InvalidInstanceID.Malformed" {
		return latch.Errorf(latch.EINVALID, "%s: %s", op, apiErr.ErrorMessage())
	}
	return translate(op, err)
}

// notFound is an ENOTFOUND *latch.Error that is also errRuleGone.
type notFound struct{ err *latch.Error }

func (e notFound) Error() string   { return e.err.Error() }
func (e notFound) Unwrap() []error { return []error{e.err, errRuleGone} }

// groupFull is an ECONFLICT *latch.Error that is also latch.ErrGroupFull,
// so that the broker can open the grant in another of the instance's groups.
type groupFull struct{ err *latch.Error }

func (e groupFull) Error() string   { return e.err.Error() }
func (e groupFull) Unwrap() []error { return []error{e.err, latch.ErrGroupFull} }

// oneLine is an error the SDK met before AWS answered (an unreachable
// endpoint, no credentials): it prints as one line, without the SDK's
// retry and response-error chain, and unwraps to the SDK's error.
type oneLine struct {
	op  string
	err error
}

func (e oneLine) Error() string { return e.op + ": " + ErrorLine(e.err) }
func (e oneLine) Unwrap() error { return e.err }

// ErrorLine says in one line what an AWS SDK call met: the operation and
// AWS's error code and message, or the address it could not reach, rather
// than the SDK's chain ("exceeded maximum number of attempts, 3, https
// response error StatusCode: 0, RequestID: , …"). Other errors print as
// they are.
func ErrorLine(err error) string {
	op, ok := errors.AsType[*smithy.OperationError](err)
	if !ok {
		return latch.ErrorMessage(err)
	}
	call := op.ServiceID + " " + op.OperationName
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return fmt.Sprintf("%s: %s: %s", call, apiErr.ErrorCode(), apiErr.ErrorMessage())
	}
	if strings.Contains(err.Error(), "failed to refresh cached credentials") {
		return call + ": no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE or --profile)"
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Sprintf("%s: cannot reach %s: %v (check --endpoint, AWS_ENDPOINT_URL and the network)", call, ue.URL, ue.Err)
	}
	inner := err
	for u := errors.Unwrap(inner); u != nil; u = errors.Unwrap(inner) {
		inner = u
	}
	return fmt.Sprintf("%s: %v", call, inner)
}
