package db

import (
	"context"
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
	// EProviderReferenceTaken: the provider's object is already bound to
	// another payment or payout of that gateway or provider.
	EProviderReferenceTaken = "provider_reference_taken"
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

// Unavailable reports whether err says the database cannot serve now, as
// opposed to refusing the statement: unreachable, stopped or restarting,
// frozen past the caller's deadline, out of connections, out of disk or
// memory, read-only, or the connection cut mid-statement. The request may
// succeed later, so the API answers 503 rather than 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	// Checked first: a failed connect wraps the server's refusal, and only
	// some refusals are temporary (too many clients is, a wrong password
	// is not).
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableCode(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// A bounded wait ran out: a pool with no free connection, a
		// database that stopped answering, a lock held too long.
		return true
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	return pgconn.SafeToRetry(err)
}

// unavailableCode reports whether a SQLSTATE says the server cannot serve
// now rather than that the statement is wrong.
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources: disk full, out of memory, too many connections
		return true
	}
	switch code {
	case "57P01", // admin shutdown (pg_ctl stop -m fast, pg_terminate_backend)
		"57P02", // crash shutdown (another backend crashed, e.g. on a full WAL disk)
		"57P03", // cannot connect now: starting up, shutting down, in recovery
		"57P05", // idle session timeout
		"57014", // query canceled: a statement timeout or a cancel request
		"25006", // read-only transaction: a read-only database or a standby
		"58030": // I/O error in the server's storage
		return true
	}
	return false
}
