package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// Migration 000016 gives every merchant with a webhook URL its default
// endpoint, and the deliveries already in the ledger their endpoint_id;
// merchants without a URL get none.
func TestMigrationGivesExistingMerchantsTheirDefaultEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.Up())
	after := 0 // migrations from 000016 on
	for _, v := range db.Versions() {
		if v >= 16 {
			after++
		}
	}
	require.NoError(t, m.Down(after))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	exec(`INSERT INTO merchants (id, name, webhook_url, webhook_secret, previous_webhook_secret, previous_webhook_secret_expires_at) VALUES
		('8d3f2a61-4c7b-4e15-9a0d-6f2b7c1e5a94', 'Old', 'https://old.example.com/hooks', 'secret-key', 'older-key', now() + interval '1 hour'),
		('2b7e4f10-93c5-4d8a-b6e1-0c5f9a3d7e28', 'No URL', NULL, NULL, NULL, NULL)`)
	exec(`INSERT INTO events (id, merchant_id, type, payload) VALUES
		('01936b90-0a1b-7c2d-9e3f-4a5b6c7d8e90', '8d3f2a61-4c7b-4e15-9a0d-6f2b7c1e5a94', 'payment.pending', '{}')`)
	exec(`INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, attempts) VALUES
		('01936b90-0a1b-7c2d-9e3f-4a5b6c7d8e9f', '8d3f2a61-4c7b-4e15-9a0d-6f2b7c1e5a94', '01936b90-0a1b-7c2d-9e3f-4a5b6c7d8e90',
		 'payment.pending', '{}', 'PENDING', 2)`)

	require.NoError(t, m.Up())
	var endpoints, matching, linked, cycle int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE is_default AND url = 'https://old.example.com/hooks' AND secret = 'secret-key'
				AND previous_secret = 'older-key' AND enabled_events = '{*}' AND status = 'enabled')
		FROM webhook_endpoints`).Scan(&endpoints, &matching))
	require.Equal(t, 1, endpoints, "the merchant without a URL has none")
	require.Equal(t, 1, matching)
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE d.endpoint_id = e.id), max(d.cycle_attempts)
		FROM webhook_deliveries d CROSS JOIN webhook_endpoints e`).Scan(&linked, &cycle))
	require.Equal(t, 1, linked, "the ledger's deliveries belong to the default endpoint")
	require.Equal(t, 2, cycle, "attempts already made count in the fast cycle")
}
