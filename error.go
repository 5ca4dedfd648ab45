package latch

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status and one exit code.
const (
	EINVALID         = "invalid"         // bad input; nothing changed
	ENOTFOUND        = "not_found"       // the thing asked for does not exist
	ECONFLICT        = "conflict"        // the thing exists but is in the wrong state
	EFORBIDDEN       = "forbidden"       // authenticated, but not allowed
	EUNAUTHENTICATED = "unauthenticated" // no or bad credentials
	EUNAVAILABLE     = "unavailable"     // a dependency failed; retrying may help
	EINTERNAL        = "internal"        // a bug
)

// Error is latch's one user-facing error. Message is written for the person
// who caused it; Field names the input at fault, if any.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an EINVALID *Error that names the field at fault.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// err.Error() for other errors.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Error()
	}
	return err.Error()
}
