package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

type outboxBundle struct {
	store    *db.Store
	merchant *db.Merchant
}

func setupOutbox(t *testing.T, webhookURL string) *outboxBundle {
	t.Helper()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(context.Background(), "Outbox Test", webhookURL)
	require.NoError(t, err)
	return &outboxBundle{store: store, merchant: nm.Merchant}
}

func (b *outboxBundle) createPayment(t *testing.T, gateway string) *db.Payment {
	t.Helper()
	ctx := context.Background()
	var p *db.Payment
	require.NoError(t, b.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = b.store.PaymentCreateTx(ctx, tx, db.PaymentCreateParams{
			MerchantID: b.merchant.ID, Amount: 5000, Currency: "XAF", Gateway: gateway,
		})
		return err
	}))
	return p
}

// pendingDeliveries creates n sandbox payments and returns their
// payment.pending deliveries' ids and job ids.
func (b *outboxBundle) pendingDeliveries(t *testing.T, n int) ([]uuid.UUID, []int64) {
	t.Helper()
	ids, jobIDs := make([]uuid.UUID, n), make([]int64, n)
	for i := range ids {
		p := b.createPayment(t, "sandbox")
		require.NoError(t, b.store.Pool.QueryRow(context.Background(), `SELECT d.id, d.job_id FROM webhook_deliveries d
			JOIN events e ON e.id = d.event_id WHERE e.object_id = $1`, p.ID).Scan(&ids[i], &jobIDs[i]))
	}
	return ids, jobIDs
}

func TestOutboxWritesStatusEventDeliveryAndJobInOneTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOutbox(t, "")
	p := b.createPayment(t, "sandbox") // no URL yet: payment.pending is recorded, not delivered
	// The old service's operator statement sets the endpoint.
	_, err := b.store.Pool.Exec(ctx, `UPDATE merchants SET webhook_url = 'https://merchant.example.com/webhooks', webhook_secret = 'secret-key' WHERE id = $1`, b.merchant.ID)
	require.NoError(t, err)

	tx, err := b.store.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck

	moved, changed, err := b.store.PaymentTransitionTx(ctx, tx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, Status: db.PaymentSucceeded})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, db.PaymentSucceeded, moved.Status)

	// Inside the transaction: the delivery row and its job are there.
	var deliveryID string
	var jobID int64
	var payload []byte
	require.NoError(t, tx.QueryRow(ctx, `SELECT d.id, d.job_id, d.payload::text FROM webhook_deliveries d
		JOIN events e ON e.id = d.event_id WHERE e.type = 'payment.succeeded' AND e.object_id = $1`, p.ID).
		Scan(&deliveryID, &jobID, &payload))
	job := rivertest.RequireInsertedTx[*riverpgxv5.Driver](ctx, t, tx, &db.DeliveryArgs{}, nil)
	require.Equal(t, deliveryID, job.Args.DeliveryID.String())
	require.Equal(t, b.merchant.ID, job.Args.MerchantID)

	var body struct {
		ID        string          `json:"id"`
		Event     string          `json:"event"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(payload, &body))
	require.Equal(t, "payment.succeeded", body.Event)
	var data map[string]any
	require.NoError(t, json.Unmarshal(body.Data, &data))
	require.Equal(t, "payment", data["object"])
	require.Equal(t, "SUCCEEDED", data["status"])
	require.Equal(t, p.ID.String(), data["id"])

	// Rolled back: none of it exists.
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, 0, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events WHERE type = 'payment.succeeded'`))
	require.Equal(t, 0, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_deliveries`))
	require.Equal(t, 0, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM river_job`))
	got, err := b.store.PaymentGet(ctx, b.merchant.ID, p.ID)
	require.NoError(t, err)
	require.Equal(t, db.PaymentPending, got.Status)
}

func TestOutboxDeliveryPayloadIsTheEventBody(t *testing.T) {
	t.Parallel()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	p := b.createPayment(t, "sandbox")
	require.Equal(t, 1, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events e JOIN webhook_deliveries d ON d.event_id = e.id
		WHERE e.object_id = $1 AND e.type = 'payment.pending' AND d.event_type = e.type
		AND d.payload::text = e.payload::text AND d.status = 'PENDING'`, p.ID))
}

func TestOutboxWithoutWebhookURLRecordsEventOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOutbox(t, "")
	p := b.createPayment(t, "sandbox")
	_, changed, err := b.store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, MerchantID: b.merchant.ID, Status: db.PaymentFailed})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 2, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events WHERE object_id = $1`, p.ID))
	require.Equal(t, 0, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_deliveries`))
	require.Equal(t, 0, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM river_job`))
}

func TestTransitionRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOutbox(t, "")
	p := b.createPayment(t, "sandbox")
	move := func(status string) (bool, error) {
		_, changed, err := b.store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, MerchantID: b.merchant.ID, Status: status})
		return changed, err
	}
	changed, err := move(db.PaymentAuthorized)
	require.NoError(t, err)
	require.True(t, changed)

	changed, err = move(db.PaymentAuthorized) // same status: no-op, no event
	require.NoError(t, err)
	require.False(t, changed)

	// A merchant may only cancel.
	_, _, err = b.store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorMerchant, ID: p.ID, MerchantID: b.merchant.ID, Status: db.PaymentSucceeded})
	require.Equal(t, db.EInvalidTransition, db.ErrorCode(err))

	_, err = move(db.PaymentSucceeded)
	require.NoError(t, err)
	_, err = move(db.PaymentFailed) // a SUCCEEDED payment stays succeeded
	require.Equal(t, db.EInvalidTransition, db.ErrorCode(err))
	_, err = move(db.PaymentRefunded)
	require.NoError(t, err)

	var types []string
	rows, err := b.store.Pool.Query(ctx, `SELECT type FROM events WHERE object_id = $1 ORDER BY id`, p.ID)
	require.NoError(t, err)
	types, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"payment.pending", "payment.authorized", "payment.succeeded", "payment.refunded"}, types)

	// Another merchant cannot move it, and learns nothing: not found.
	other, err := b.store.MerchantCreate(ctx, "Other", "")
	require.NoError(t, err)
	_, _, err = b.store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, MerchantID: other.Merchant.ID, Status: db.PaymentCancelled})
	require.True(t, errors.Is(err, db.ErrNotFound))
}

func TestConcurrentTransitionsEmitOneEventPerRealChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	p := b.createPayment(t, "sandbox")

	const n = 12
	var wg sync.WaitGroup
	changes := make(chan bool, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every caller asks for the same move: one of them makes it.
			status := db.PaymentSucceeded
			_, changed, err := b.store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, Status: status})
			if err != nil && db.ErrorCode(err) != db.EInvalidTransition {
				t.Error(err)
			}
			changes <- changed
		}()
	}
	wg.Wait()
	close(changes)
	real := 0
	for c := range changes {
		if c {
			real++
		}
	}
	require.Equal(t, 1, real)
	require.Equal(t, 2, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events WHERE object_id = $1`, p.ID))
	require.Equal(t, 2, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_deliveries`))
	require.Equal(t, 2, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery'`))
}

func TestPayoutTransitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	phone := "+241077000000"
	var po *db.Payout
	require.NoError(t, b.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		po, err = b.store.PayoutCreateTx(ctx, tx, db.PayoutCreateParams{
			MerchantID: b.merchant.ID, Amount: 2500, Currency: "XAF", Provider: "sandbox",
			Recipient: db.Recipient{Phone: &phone},
		})
		return err
	}))
	for _, s := range []string{db.PayoutProcessing, db.PayoutSucceeded} {
		_, changed, err := b.store.PayoutTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: po.ID, MerchantID: b.merchant.ID, Status: s})
		require.NoError(t, err)
		require.True(t, changed)
	}
	_, _, err := b.store.PayoutTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: po.ID, Status: db.PayoutFailed})
	require.Equal(t, db.EInvalidTransition, db.ErrorCode(err))
	require.Equal(t, 3, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_deliveries WHERE event_type LIKE 'payout.%'`))
}

// Many workers' successes in one statement: each row written once, on top
// of the attempts count its worker read; a record whose row moved on (here:
// an attempt already counted) is reported unwritten and changes nothing.
func TestDeliveryRecordSucceededManyWritesEachOwnedRowOnce(t *testing.T) {
	t.Parallel()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	ctx := context.Background()
	var recs []db.AttemptRecord
	ids, jobIDs := b.pendingDeliveries(t, 3)
	for i, id := range ids {
		code := 204
		recs = append(recs, db.AttemptRecord{DeliveryID: id, JobID: jobIDs[i], Status: db.DeliverySucceeded, StatusCode: &code,
			Duration: 12 * time.Millisecond})
	}
	recs[2].PriorAttempts = 1 // its worker read a count the row does not have
	written, err := b.store.DeliveryRecordSucceededMany(ctx, recs)
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false}, written)
	for i, r := range recs {
		var status string
		var attempts, rows int
		require.NoError(t, b.store.Pool.QueryRow(ctx, `SELECT status, attempts,
				(SELECT count(*) FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id AND a.status_code = 204 AND a.attempt = 1)
			FROM webhook_deliveries d WHERE id = $1`, r.DeliveryID).Scan(&status, &attempts, &rows))
		if written[i] {
			require.Equal(t, []any{db.DeliverySucceeded, 1, 1}, []any{status, attempts, rows})
		} else {
			require.Equal(t, []any{db.DeliveryPending, 0, 0}, []any{status, attempts, rows})
		}
	}
	// Written again (a rewrite whose first commit went through): nothing changes.
	written, err = b.store.DeliveryRecordSucceededMany(ctx, recs[:1])
	require.NoError(t, err)
	require.Equal(t, []bool{false}, written)
	require.Equal(t, 1, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1`, recs[0].DeliveryID))
}

// Many workers' reads in one statement, each answered in its request's
// place (nil for a row that does not exist), and nothing written. Whether a
// job may send follows the row: its own cycle's job, due, endpoint enabled.
func TestDeliveryTargetManyAnswersEachRequestInItsPlace(t *testing.T) {
	t.Parallel()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	ctx := context.Background()
	ids, jobIDs := b.pendingDeliveries(t, 3)
	_, err := b.store.Pool.Exec(ctx, `UPDATE webhook_deliveries SET next_retry_at = now() + interval '1 hour' WHERE id = $1`, ids[1])
	require.NoError(t, err)
	_, err = b.store.Pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'SUCCEEDED', next_retry_at = NULL WHERE id = $1`, ids[2])
	require.NoError(t, err)
	versions := func() string { // every row's version: unchanged when nothing was written
		var v string
		require.NoError(t, b.store.Pool.QueryRow(ctx, `SELECT string_agg(xmin::text, ',' ORDER BY id) FROM webhook_deliveries`).Scan(&v))
		return v
	}
	before := versions()

	got, err := b.store.DeliveryTargetMany(ctx, []uuid.UUID{ids[0], ids[1], uuid.New(), ids[2], ids[0]})
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.Nil(t, got[2])
	for i, id := range []uuid.UUID{ids[0], ids[1], uuid.Nil, ids[2], ids[0]} {
		if id == uuid.Nil {
			continue
		}
		require.Equal(t, id, got[i].Delivery.ID, "request %d", i)
		require.Equal(t, db.EndpointEnabled, got[i].EndpointState)
		require.Equal(t, "https://merchant.example.com/hooks", got[i].URL)
		require.NotEmpty(t, got[i].Secret)
	}
	now := time.Now()
	require.True(t, got[0].SendableBy(jobIDs[0], now))
	require.False(t, got[0].SendableBy(jobIDs[0]+1000, now), "another job's cycle")
	require.False(t, got[1].SendableBy(jobIDs[1], now), "not due")
	require.True(t, got[1].SendableBy(jobIDs[1], now.Add(2*time.Hour)))
	require.False(t, got[3].SendableBy(jobIDs[2], now), "delivered")
	got[0].EndpointState = "disabled"
	require.False(t, got[0].SendableBy(jobIDs[0], now), "endpoint disabled")
	require.Equal(t, before, versions())
	require.Zero(t, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM webhook_deliveries WHERE status = 'PROCESSING'`))
}

// A slow attempt's mark: PROCESSING with last_attempt_at its start, only
// where the attempt found the row; a mark that comes after the outcome, or
// for another job's cycle, changes nothing.
func TestDeliveryMarkProcessingManyMarksOnlyRowsWhereTheAttemptFoundThem(t *testing.T) {
	t.Parallel()
	b := setupOutbox(t, "https://merchant.example.com/hooks")
	ctx := context.Background()
	ids, jobIDs := b.pendingDeliveries(t, 3)
	started := time.Now().Add(-3 * time.Second).UTC().Truncate(time.Microsecond)
	code := 200
	written, err := b.store.DeliveryRecordSucceededMany(ctx, []db.AttemptRecord{{DeliveryID: ids[1], JobID: jobIDs[1],
		Status: db.DeliverySucceeded, StatusCode: &code, StartedAt: started}})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, written)

	_, err = b.store.DeliveryMarkProcessingMany(ctx, []db.ProcessingMark{
		{DeliveryID: ids[0], JobID: jobIDs[0], StartedAt: started},
		{DeliveryID: ids[1], JobID: jobIDs[1], StartedAt: started},        // its outcome came first
		{DeliveryID: ids[2], JobID: jobIDs[2] + 1000, StartedAt: started}, // not its job
	})
	require.NoError(t, err)
	statuses := make([]string, 3)
	for i, id := range ids {
		var last *time.Time
		require.NoError(t, b.store.Pool.QueryRow(ctx, `SELECT status, last_attempt_at FROM webhook_deliveries WHERE id = $1`, id).
			Scan(&statuses[i], &last))
		if i < 2 {
			require.NotNil(t, last)
			require.True(t, started.Equal(*last), "last_attempt_at is the attempt's start: %v", last)
		}
	}
	require.Equal(t, []string{db.DeliveryProcessing, db.DeliverySucceeded, db.DeliveryPending}, statuses)
}
