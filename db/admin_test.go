package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

func TestPaymentStatusOverrideIsOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	p := b.createPayment(t, "stripe")
	events := dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events`)
	jobs := dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM river_job`)

	// The audit row fails (admin_actions refuses a reason over 1000
	// characters) after the transition ran: nothing of it may remain.
	_, _, err := b.store.PaymentStatusOverride(ctx, db.OverrideParams{
		ID: p.ID, Status: db.PaymentSucceeded, Reason: strings.Repeat("r", 1001),
	})
	require.Error(t, err)
	got, err := b.store.PaymentGet(ctx, b.merchant.ID, p.ID)
	require.NoError(t, err)
	require.Equal(t, db.PaymentPending, got.Status)
	require.Equal(t, events, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events`))
	require.Equal(t, jobs, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM river_job`))
	require.Zero(t, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM admin_actions`))

	moved, action, err := b.store.PaymentStatusOverride(ctx, db.OverrideParams{
		ID: p.ID, Status: db.PaymentSucceeded, Reason: "confirmed with Stripe support",
	})
	require.NoError(t, err)
	require.Equal(t, db.PaymentSucceeded, moved.Status)
	require.NotNil(t, action)
	require.Nil(t, action.RequestID)
	require.Equal(t, events+1, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events`))
	require.Equal(t, 1, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_deliveries WHERE event_id = $1`, *action.EventID))
}
