package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// TestServeAdminConsole: with ADMIN_TOKEN, serve mounts the River UI (also
// with ROLE=api, whose River client never starts); without it, /admin is 404.
func TestServeAdminConsole(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	s := startServe(t, map[string]string{"DATABASE_URL": url, "ADMIN_TOKEN": "ops-secret", "ROLE": "api"})
	req, err := http.NewRequest(http.MethodGet, s.base+"/admin/river/", nil)
	require.NoError(t, err)
	req.SetBasicAuth("admin", "ops-secret")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	code, body := get(t, s.base+"/admin/river/api/jobs?state=available", "Authorization", "Bearer ops-secret")
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, _ = get(t, s.base+"/admin/river/")
	require.Equal(t, http.StatusUnauthorized, code)

	closed := startServe(t, map[string]string{"DATABASE_URL": url, "ROLE": "api"})
	code, _ = get(t, closed.base+"/admin/river/", "Authorization", "Bearer ops-secret")
	require.Equal(t, http.StatusNotFound, code)
}

// TestServeRunsLedgerRetention: the workers run the retention job at start
// (and hourly after), pruning what is older than WEBHOOK_RETENTION.
func TestServeRunsLedgerRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	delivered := func(age time.Duration) uuid.UUID {
		t.Helper()
		id := uuid.Must(uuid.NewV7())
		_, err := conn.Exec(ctx, `WITH m AS (INSERT INTO merchants (name) VALUES ('Retained') RETURNING id),
			e AS (INSERT INTO events (id, merchant_id, type, payload) SELECT $1, id, 'payment.pending', '{}' FROM m)
			INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, delivered_at)
			SELECT $2, id, $1, 'payment.pending', '{}', 'SUCCEEDED', now() - $3::interval FROM m`,
			uuid.Must(uuid.NewV7()), id, age.String())
		require.NoError(t, err)
		return id
	}
	old, recent := delivered(72*time.Hour), delivered(24*time.Hour)

	startServe(t, map[string]string{"DATABASE_URL": url, "WEBHOOK_RETENTION": "48h"})
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM river_job
			WHERE kind = 'webhook_ledger_retention' AND state = 'completed'`).Scan(&n)
		return err == nil && n == 1
	}, 30*time.Second, 50*time.Millisecond)
	rows, err := conn.Query(ctx, `SELECT id FROM webhook_deliveries WHERE id = ANY($1)`, []uuid.UUID{old, recent})
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{recent}, ids)
}
