package db_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// TestListQueriesUseIndexes checks the plans of the list queries on a table
// big enough that Postgres would rather sort than walk a useless index: every
// page is a range of the merchant's index in id order, whatever the filter
// and cursor, with no Sort, and never a walk of the primary key filtered on
// merchant_id, which costs every newer row of other merchants (for a
// merchant quiet for a while: half the table). (docs/BENCHMARKS.md has the
// timing at 10 million rows.)
func TestListQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	var merchants []uuid.UUID
	for range 5 {
		nm, err := store.MerchantCreate(ctx, "M", "")
		require.NoError(t, err)
		merchants = append(merchants, nm.Merchant.ID)
	}
	// 200k payments, 1% of them the merchant under test's, 10% of the oldest
	// half the quiet merchant's, over 6 statuses, ids ascending as UUIDv7's are.
	_, err := store.Pool.Exec(ctx, `INSERT INTO payments (id, merchant_id, amount, currency, gateway, status)
		SELECT lpad(to_hex(g), 32, '0')::uuid,
			CASE WHEN g % 100 = 0 THEN ($1::uuid[])[1]
				WHEN g % 10 = 1 AND g < 100000 THEN ($1::uuid[])[5]
				ELSE ($1::uuid[])[2 + g % 3] END, 100, 'XAF', 'sandbox',
			(ARRAY['PENDING','AUTHORIZED','SUCCEEDED','FAILED','CANCELLED','REFUNDED'])[1 + (g / 7) % 6]
		FROM generate_series(1, 200000) g`, merchants)
	require.NoError(t, err)
	_, err = store.Pool.Exec(ctx, `VACUUM ANALYZE payments`) // as autovacuum leaves a table: statistics and the visibility map
	require.NoError(t, err)

	cursor := uuid.MustParse("00000000-0000-0000-0000-000000020000")
	for _, merchant := range []uuid.UUID{merchants[0], merchants[4]} {
		for _, params := range []db.ListParams{
			{Limit: 10},
			{Limit: 100, Filter: "SUCCEEDED"},
			{Limit: 10, StartingAfter: &cursor},
			{Limit: 10, Filter: "REFUNDED", StartingAfter: &cursor},
		} {
			query, args := db.ListQuery("payments", "id, status", "status", merchant, params)
			var plan []map[string]any
			var raw []byte
			require.NoError(t, store.Pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&raw))
			require.NoError(t, json.Unmarshal(raw, &plan))
			text := string(raw)
			require.NotContains(t, text, `"Node Type": "Seq Scan"`, "list query scans the table: %s\n%s", query, text)
			want := "payments_merchant_id_idx"
			if params.Filter != "" {
				want = "payments_merchant_status_idx"
			}
			require.True(t, strings.Contains(text, want), "list query does not use %s: %s\n%s", want, query, text)
			require.NotContains(t, text, `"Node Type": "Sort"`, "list query sorts: %s\n%s", query, text)
			require.NotContains(t, text, `"Index Name": "payments_pkey"`, "list query walks the primary key: %s\n%s", query, text)
		}
	}
}
