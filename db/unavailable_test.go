package db_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// TestUnavailable classifies the errors a stopped or restarting database
// produces (the API answers them 503) apart from errors in the statement
// itself (500) and domain errors. TestPostgresRestartUnderLoad
// (cmd/boohpay) meets them for real.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: a real *pgconn.ConnectError.
	_, connectErr := pgconn.Connect(context.Background(), "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5")
	require.Error(t, connectErr)

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("finding api key: %w", connectErr), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"cut mid-statement", fmt.Errorf("inserting: %w", io.ErrUnexpectedEOF), true},
		{"closed connection", pgconn.ErrConnClosed, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"not found", db.ErrNotFound, false},
		{"plain error", errors.New("boom"), false},
		{"nil", nil, false},
	} {
		require.Equal(t, tc.want, db.Unavailable(tc.err), tc.name)
	}
}
