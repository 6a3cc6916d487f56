package db_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// TestVocabularyMatchesSQLChecks: the Go vocabularies and the SQL CHECK
// constraints list the same values, so neither can drift alone.
func TestVocabularyMatchesSQLChecks(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	for _, tc := range []struct {
		constraint string
		want       []string
	}{
		{"payments_gateway_check", db.Gateways},
		{"payouts_provider_check", append(slices.Clone(db.PayoutProviders), db.PayoutProvidersRetired...)},
		{"payments_status_check", db.PaymentStatuses},
		{"payouts_status_check", db.PayoutStatuses},
		{"provider_events_provider_check", db.InboundProviders},
		{"provider_events_result_check", append([]string{"received"}, db.ProviderEventOutcomes...)},
		{"provider_events_object_type_check", db.Objects},
		{"admin_actions_action_check", db.AdminActions},
	} {
		require.ElementsMatch(t, tc.want, checkValues(t, store, tc.constraint), tc.constraint)
	}
}

var quoted = regexp.MustCompile(`'([^']*)'`)

// checkValues reads the quoted values of an IN (…) CHECK constraint.
func checkValues(t *testing.T, store *db.Store, name string) []string {
	t.Helper()
	var def string
	require.NoError(t, store.Pool.QueryRow(context.Background(),
		`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1`, name).Scan(&def), name)
	var values []string
	for _, m := range quoted.FindAllStringSubmatch(def, -1) {
		values = append(values, m[1])
	}
	return values
}

// TestMigrationKeepsTheOldestOfDuplicateReferences: the unique index on
// provider_reference is created on a database that already holds
// duplicates (the old global, newest-wins lookup allowed them): the oldest
// object keeps the binding, the others lose it and are flagged for review,
// the reference kept in the detail. Nothing fails, nothing is deleted.
func TestMigrationKeepsTheOldestOfDuplicateReferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.Up())
	after := 0 // migrations after 000014: numbers may skip
	for _, v := range db.Versions() {
		if v > 14 {
			after++
		}
	}
	require.NoError(t, m.Down(after)) // back to before 000015

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO merchants (id, name) VALUES ('00000000-0000-0000-0000-0000000000a1', 'A'), ('00000000-0000-0000-0000-0000000000b2', 'B')`)
	payment := func(id, merchant, gateway, status, ref, created string) {
		exec(`INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, provider_reference, created_at)
			VALUES ($1, $2, 5000, 'XAF', $3, $4, $5, $6)`, id, merchant, gateway, status, ref, created)
	}
	payment("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-0000000000a1", "stripe", "SUCCEEDED", "pi_shared", "2026-01-01")
	payment("00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-0000000000b2", "stripe", "PENDING", "pi_shared", "2026-01-02")
	payment("00000000-0000-0000-0000-000000000003", "00000000-0000-0000-0000-0000000000b2", "stripe", "PENDING", "pi_shared", "2026-01-03")
	payment("00000000-0000-0000-0000-000000000004", "00000000-0000-0000-0000-0000000000b2", "moneroo", "PENDING", "pi_shared", "2026-01-04")
	payment("00000000-0000-0000-0000-000000000005", "00000000-0000-0000-0000-0000000000a1", "stripe", "REFUNDED", "pi_alone", "2026-01-05")
	exec(`INSERT INTO payouts (id, merchant_id, amount, currency, provider, status, provider_reference, created_at) VALUES
		('00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-0000000000a1', 100, 'XAF', 'moneroo', 'PENDING', 'po_x', '2026-01-01'),
		('00000000-0000-0000-0000-000000000012', '00000000-0000-0000-0000-0000000000a1', 100, 'XAF', 'moneroo', 'PENDING', 'po_x', '2026-01-02'),
		('00000000-0000-0000-0000-000000000013', '00000000-0000-0000-0000-0000000000a1', 100, 'XAF', 'shap', 'PROCESSING', NULL, '2026-01-03')`)
	exec(`INSERT INTO provider_events (provider, event_key, event_type, result, payload) VALUES
		('stripe', 'evt_old_1', 'payment_intent.succeeded', 'unchanged', '{}'),
		('stripe', 'evt_old_2', 'payment_intent.payment_failed', 'invalid_transition', '{}')`)

	require.NoError(t, m.Up(), "the migration must not fail on duplicates")

	type row struct {
		ref, reason, detail *string
	}
	read := func(table, id string) row {
		var r row
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`SELECT provider_reference, review ->> 'reason', review ->> 'detail' FROM %s WHERE id = $1`, table), id).
			Scan(&r.ref, &r.reason, &r.detail))
		return r
	}
	kept := read("payments", "00000000-0000-0000-0000-000000000001")
	require.Equal(t, "pi_shared", *kept.ref)
	require.Nil(t, kept.reason)
	for _, id := range []string{"00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003"} {
		lost := read("payments", id)
		require.Nil(t, lost.ref)
		require.Equal(t, db.ReviewProviderReferenceDup, *lost.reason)
		require.Contains(t, *lost.detail, "pi_shared")
		require.Contains(t, *lost.detail, "00000000-0000-0000-0000-000000000001")
	}
	require.Equal(t, "pi_shared", *read("payments", "00000000-0000-0000-0000-000000000004").ref, "another gateway's is not a duplicate")
	require.Equal(t, "po_x", *read("payouts", "00000000-0000-0000-0000-000000000011").ref)
	require.Equal(t, db.ReviewProviderReferenceDup, *read("payouts", "00000000-0000-0000-0000-000000000012").reason)
	require.Equal(t, db.ReviewProviderRetired, *read("payouts", "00000000-0000-0000-0000-000000000013").reason)

	var received, refunded int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT amount_received, amount_refunded FROM payments WHERE id = '00000000-0000-0000-0000-000000000005'`).
		Scan(&received, &refunded))
	require.Equal(t, []int64{5000, 5000}, []int64{received, refunded})

	var results []string
	rows, err := conn.Query(ctx, `SELECT result FROM provider_events ORDER BY id`)
	require.NoError(t, err)
	results, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{db.OutcomeIgnored, db.OutcomeStale}, results)

	var inReview int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM objects_in_review`).Scan(&inReview))
	require.Equal(t, 4, inReview)

	// From now on the index holds.
	_, err = conn.Exec(ctx, `UPDATE payments SET provider_reference = 'pi_shared' WHERE id = '00000000-0000-0000-0000-000000000002'`)
	require.ErrorContains(t, err, "payments_provider_reference_key")
}
