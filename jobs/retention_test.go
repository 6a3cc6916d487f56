package jobs

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

type retentionBundle struct {
	t        *testing.T
	store    *db.Store
	merchant uuid.UUID
	worker   *RetentionWorker
}

const retentionPeriod = 30 * 24 * time.Hour

func setupRetention(t *testing.T) *retentionBundle {
	t.Helper()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(context.Background(), "Retention", "https://merchant.example.com/hooks")
	require.NoError(t, err)
	w := newRetentionWorker(store, slog.New(slog.NewTextHandler(io.Discard, nil)), retentionPeriod)
	w.batch = 2 // several batches per run even with a handful of rows
	return &retentionBundle{t: t, store: store, merchant: nm.Merchant.ID, worker: w}
}

// delivery writes an event, its delivery in status, and attempts attempts,
// all as of age ago, and returns the delivery id.
func (b *retentionBundle) delivery(status string, age time.Duration, attempts int) uuid.UUID {
	b.t.Helper()
	ctx := context.Background()
	eventID, deliveryID := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	at := time.Now().Add(-age)
	var deliveredAt *time.Time
	if status == db.DeliverySucceeded {
		deliveredAt = &at
	}
	payload := `{"id":"` + eventID.String() + `","event":"payment.succeeded","timestamp":"2026-01-01T00:00:00Z","data":{}}`
	require.NoError(b.t, b.store.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO events (id, merchant_id, type, payload, created_at)
			VALUES ($1, $2, 'payment.succeeded', $3, $4)`, eventID, b.merchant, payload, at); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload,
				status, attempts, last_attempt_at, delivered_at, created_at, updated_at)
			VALUES ($1, $2, $3, 'payment.succeeded', $4, $5, $6, $7, $8, $7, $7)`,
			deliveryID, b.merchant, eventID, payload, status, attempts, at, deliveredAt); err != nil {
			return err
		}
		for i := 1; i <= attempts; i++ {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, created_at)
				VALUES ($1, $2, 500, 12, $3)`, deliveryID, i, at); err != nil {
				return err
			}
		}
		return nil
	}))
	return deliveryID
}

func (b *retentionBundle) count(query string, args ...any) int {
	b.t.Helper()
	var n int
	require.NoError(b.t, b.store.Pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func (b *retentionBundle) work() {
	b.t.Helper()
	require.NoError(b.t, b.worker.Work(context.Background(), &river.Job[RetentionArgs]{}))
}

func TestRetentionPrunesOldAttemptsAndDeliveredRows(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	old := retentionPeriod + time.Hour
	var oldDelivered []uuid.UUID
	for range 5 {
		oldDelivered = append(oldDelivered, b.delivery(db.DeliverySucceeded, old, 2))
	}
	oldFailed := b.delivery(db.DeliveryFailed, old, 6)
	oldPending := b.delivery(db.DeliveryPending, old, 1)
	recentDelivered := b.delivery(db.DeliverySucceeded, time.Hour, 1)
	recentFailed := b.delivery(db.DeliveryFailed, time.Hour, 6)

	b.work()

	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = ANY($1)`, oldDelivered))
	// Failures and unfinished deliveries stay (operators replay them); their
	// old attempts go, their summary columns stay.
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = $1 AND attempts = 6`, oldFailed))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = $1`, oldPending))
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = ANY($1)`,
		[]uuid.UUID{oldFailed, oldPending}))
	// Recent rows are untouched.
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1`, recentDelivered))
	require.Equal(t, 6, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1`, recentFailed))
	require.Equal(t, 2, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = ANY($1)`,
		[]uuid.UUID{recentDelivered, recentFailed}))
	// Events are never pruned: merchants can list every event ever emitted.
	require.Equal(t, 9, b.count(`SELECT count(*) FROM events`))

	b.work() // nothing left to do
	require.Equal(t, 4, b.count(`SELECT count(*) FROM webhook_deliveries`))
}

func TestRetentionSkipsLockedRowsInsteadOfWaiting(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	ctx := context.Background()
	old := retentionPeriod + time.Hour
	locked := b.delivery(db.DeliverySucceeded, old, 1)
	free := b.delivery(db.DeliverySucceeded, old, 1)

	// Another transaction holds one old row, as an operator's open UPDATE would.
	tx, err := b.store.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT 1 FROM webhook_deliveries WHERE id = $1 FOR UPDATE`, locked)
	require.NoError(t, err)

	// The run completes without waiting on it (a wait would hang here until
	// the test times out) and leaves it for a later run.
	b.work()
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = $1`, free))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = $1`, locked))

	require.NoError(t, tx.Rollback(ctx))
	b.work()
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE id = $1`, locked))
}

func TestRetentionStopsAtItsBudget(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	old := retentionPeriod + time.Hour
	for range 3 {
		b.delivery(db.DeliverySucceeded, old, 1)
	}
	// A spent budget starts no batch; the next run carries on.
	res, err := b.store.LedgerPrune(context.Background(), db.LedgerPruneParams{
		Before: time.Now().Add(-retentionPeriod), Batch: 2, Until: time.Now(),
	})
	require.NoError(t, err)
	require.False(t, res.Done)
	require.Equal(t, 3, b.count(`SELECT count(*) FROM webhook_deliveries`))

	b.work()
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries`))
}
