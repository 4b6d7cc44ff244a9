package optoutd

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The API maps each Code to one wire code in a
// single table (api/errors.go); nothing else chooses wire codes.
type Code string

const (
	// Invalid: the request is malformed; nothing was changed.
	Invalid Code = "invalid"
	// NotFound: the record (or purpose) does not exist.
	NotFound Code = "not_found"
	// VersionMismatch: a compare-and-set saw another version; see
	// Error.CurrentVersion. Nothing was changed.
	VersionMismatch Code = "version_mismatch"
	// FailedPrecondition: a rule refused the request: a client schema below
	// the cluster's minimum, an idempotency key reused for another request,
	// an erased subject's suppression. Nothing was changed.
	FailedPrecondition Code = "failed_precondition"
	// OutOfRange: a watch asked for history that retention removed.
	OutOfRange Code = "out_of_range"
	// Unavailable: no leader or no quorum. For a write it also promises the
	// write was NOT applied, so a retry is safe.
	Unavailable Code = "unavailable"
	// OutcomeUnknown: a write may or may not have been applied (leadership
	// lost after proposing, a forwarded write whose connection broke, a
	// deadline that expired while waiting for commit).
	OutcomeUnknown Code = "outcome_unknown"
	// Halted: this node met a log entry it cannot apply and stopped applying.
	Halted Code = "halted"
	// Internal: a bug or an I/O failure.
	Internal Code = "internal"
)

// Error is the domain error. Message is safe to show to a client.
type Error struct {
	Code    Code
	Message string
	// CurrentVersion is set with VersionMismatch.
	CurrentVersion uint64
	// Err is the cause, if any; it is not shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError builds an Error that keeps err as its cause.
func WrapError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the Code of the first *Error in err's chain, or Internal
// when there is none (and "" for a nil error).
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
