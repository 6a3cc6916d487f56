package db

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Error codes of domain errors. The API maps each to one HTTP status.
const (
	ENotFound          = "not_found"
	EInvalid           = "invalid_request"
	EValidation        = "parameter_invalid"
	EUnavailable       = "service_unavailable"
	EConflict          = "conflict"
	EInvalidTransition = "invalid_transition"
	EIdempotency       = "idempotency_error"
	EUnauthorized      = "unauthorized"
)

// Error is a domain error: a code, a message fit for the caller and, for
// invalid input, the parameter at fault.
type Error struct {
	Code    string
	Message string
	Param   string
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Param)
	}
	return e.Code + ": " + e.Message
}

// Errorf returns a domain error with a code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is returned when a row does not exist or belongs to another merchant.
var ErrNotFound = &Error{Code: ENotFound, Message: "no such object"}

// notFound maps pgx.ErrNoRows to ErrNotFound; the one place that does.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// ErrorCode returns the code of a domain error in err's chain, or "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
