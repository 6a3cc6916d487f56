package db_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
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
		{"too many clients at connect", &pgconn.ConnectError{Config: &pgconn.Config{}}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"out of memory", &pgconn.PgError{Code: "53200"}, true},
		{"read-only", &pgconn.PgError{Code: "25006"}, true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"a bounded wait ran out", fmt.Errorf("acquiring: %w", context.DeadlineExceeded), true},
		{"wrong password", fmt.Errorf("connecting: %w", &pgconn.PgError{Code: "28P01"}), false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"not found", db.ErrNotFound, false},
		{"plain error", errors.New("boom"), false},
		{"nil", nil, false},
	} {
		require.Equal(t, tc.want, db.Unavailable(tc.err), tc.name)
	}
}

// InTxRetrying waits out a connection cut before COMMIT: the transaction
// runs again on a new connection, and its write lands exactly once.
func TestInTxRetryingWaitsOutACut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	direct, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(direct.Close)
	_, err = direct.Exec(ctx, `CREATE TABLE retry_probe (n int)`)
	require.NoError(t, err)

	proxy := dbtest.NewProxy(t, url)
	store := dbtest.Open(t, proxy.URL(url))

	calls := 0
	err = store.InTxRetrying(ctx, func(tx pgx.Tx) error {
		calls++
		if calls == 1 {
			proxy.CutAll() // the transaction's connection is gone
		}
		_, err := tx.Exec(ctx, `INSERT INTO retry_probe VALUES (1)`)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, 2, calls)
	var n int
	require.NoError(t, direct.QueryRow(ctx, `SELECT count(*) FROM retry_probe`).Scan(&n))
	require.Equal(t, 1, n)

	// An error in the statement itself is not retried.
	calls = 0
	err = store.InTxRetrying(ctx, func(tx pgx.Tx) error {
		calls++
		_, err := tx.Exec(ctx, `INSERT INTO retry_probe VALUES ('x')`)
		return err
	})
	require.Error(t, err)
	require.Equal(t, 1, calls)
}
