package db

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Unavailable reports whether err says the database could not be reached or
// went away mid-statement (stopped, restarting, failing over, the
// connection cut), as opposed to refusing the statement: the request may
// succeed later, so the API answers 503 rather than 500.
func Unavailable(err error) bool {
	var connectErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	var netErr net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &pgErr):
		// 08: connection exception; 57P01-03: admin or crash shutdown,
		// cannot connect now (starting up or shutting down).
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	return pgconn.SafeToRetry(err)
}
