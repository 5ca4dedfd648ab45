package ec2sim

import (
	"fmt"
	"net/http"
)

// Error codes the simulator returns. They are EC2's own codes, spelled as
// EC2 spells them, because callers (and the SDK's retryer) match on them.
const (
	CodeDependencyViolation         = "DependencyViolation"
	CodeDryRunOperation             = "DryRunOperation"
	CodeInternalError               = "InternalError"
	CodeInvalidAction               = "InvalidAction"
	CodeInvalidGroupDuplicate       = "InvalidGroup.Duplicate"
	CodeInvalidGroupNotFound        = "InvalidGroup.NotFound"
	CodeInvalidGroupReserved        = "InvalidGroup.Reserved"
	CodeInvalidGroupIDMalformed     = "InvalidGroupId.Malformed"
	CodeInvalidID                   = "InvalidID"
	CodeInvalidInstanceIDMalformed  = "InvalidInstanceID.Malformed"
	CodeInvalidInstanceIDNotFound   = "InvalidInstanceID.NotFound"
	CodeInvalidPaginationToken      = "InvalidPaginationToken"
	CodeInvalidParameterCombination = "InvalidParameterCombination"
	CodeInvalidParameterValue       = "InvalidParameterValue"
	CodeInvalidPermissionDuplicate  = "InvalidPermission.Duplicate"
	CodeInvalidPermissionNotFound   = "InvalidPermission.NotFound"
	CodeInvalidRuleIDMalformed      = "InvalidSecurityGroupRuleId.Malformed"
	CodeInvalidRuleIDNotFound       = "InvalidSecurityGroupRuleId.NotFound"
	CodeInvalidVpcIDNotFound        = "InvalidVpcID.NotFound"
	CodeMissingAction               = "MissingAction"
	CodeMissingParameter            = "MissingParameter"
	CodeNoSuchVersion               = "NoSuchVersion"
	CodeRequestLimitExceeded        = "RequestLimitExceeded"
	CodeRulesPerGroupLimitExceeded  = "RulesPerSecurityGroupLimitExceeded"
	CodeTagLimitExceeded            = "TagLimitExceeded"
	CodeUnsupportedOperation        = "UnsupportedOperation"
)

// apiError is an EC2 error answer. Handlers return it; the server turns it
// into EC2's error XML with the status EC2 would use.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// status is the HTTP status EC2 sends with code. EC2 sends 503 with
// RequestLimitExceeded; the SDK classifies by code, but a 503 also keeps
// clients that look only at the status retrying.
func (e *apiError) status() int {
	switch e.Code {
	case CodeRequestLimitExceeded:
		return http.StatusServiceUnavailable
	case CodeInternalError:
		return http.StatusInternalServerError
	case CodeDryRunOperation:
		return http.StatusPreconditionFailed
	case CodeUnauthorizedOperation:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

func errf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func missing(param string) *apiError {
	return errf(CodeMissingParameter, "The request must contain the parameter %s", param)
}

func invalidValue(param, value, why string) *apiError {
	msg := fmt.Sprintf("Value (%s) for parameter %s is invalid.", value, param)
	if why != "" {
		msg += " " + why
	}
	return &apiError{Code: CodeInvalidParameterValue, Message: msg}
}
