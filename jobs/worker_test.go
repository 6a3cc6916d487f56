package jobs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// Direct tests of DeliveryWorker.Work, one branch each: the worker runs one
// job through rivertest (River's executor and completer, no client, no
// polling), and the test reads what the run left in the ledger and in
// river_job. The end-to-end tests in delivery_test.go cover the same paths
// through a running client.

// workBundle is a worker on a fresh database and the job runner around it.
type workBundle struct {
	*testBundle
	worker *DeliveryWorker
	runner *rivertest.Worker[db.DeliveryArgs, pgx.Tx]
	rc     *receiver
	m      *db.Merchant
}

func setupWork(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request), tune func(*Config)) *workBundle {
	t.Helper()
	b := &workBundle{testBundle: setup(t)}
	cfg := testConfig()
	if tune != nil {
		tune(&cfg)
	}
	b.worker = newDeliveryWorker(b.store, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg.withDefaults())
	b.runner = rivertest.NewWorker(t, riverpgxv5.New(b.pool), &river.Config{}, river.Worker[db.DeliveryArgs](b.worker))
	b.rc = newReceiver(t, respond)
	b.m, _ = b.merchant(b.rc.URL)
	return b
}

// work runs the job jobID once and returns how River recorded the run and
// the error Work returned.
func (b *workBundle) work(jobID int64) (*rivertest.WorkResult, error) {
	b.t.Helper()
	ctx := context.Background()
	job := b.jobRow(jobID)
	tx, err := b.pool.Begin(ctx)
	require.NoError(b.t, err)
	res, workErr := b.runner.WorkJob(ctx, b.t, tx, job)
	require.NoError(b.t, tx.Commit(ctx))
	return res, workErr
}

func (b *workBundle) jobRow(id int64) *rivertype.JobRow {
	b.t.Helper()
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(b.t, err)
	job, err := client.JobGet(context.Background(), id)
	require.NoError(b.t, err)
	return job
}

func TestWorkSuccessRecordsTheAttemptAndCompletes(t *testing.T) {
	t.Parallel()
	b := setupWork(t, nil, nil)
	id := b.emit(b.m)
	res, err := b.work(*b.ledger(id).JobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	require.Len(t, b.rc.got(), 1)
	r := b.ledger(id)
	require.Equal(t, db.DeliverySucceeded, r.Status)
	require.Equal(t, 1, r.Attempts)
	require.NotNil(t, r.DeliveredAt)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1 AND status_code = 200`, id))
}

func TestWorkFailureSchedulesTheRetryFromTheLedger(t *testing.T) {
	t.Parallel()
	b := setupWork(t, respondStatus(http.StatusInternalServerError), func(c *Config) { c.RetryBaseDelay = 2 * time.Second })
	id := b.emit(b.m)
	before := time.Now()
	res, err := b.work(*b.ledger(id).JobID)
	require.ErrorContains(t, err, "attempt 1 failed, retrying at")
	require.Equal(t, river.EventKindJobFailed, res.EventKind)
	r := b.ledger(id)
	require.Equal(t, db.DeliveryPending, r.Status)
	require.Equal(t, 1, r.Attempts)
	require.NotNil(t, r.NextRetryAt)
	require.WithinRange(t, *r.NextRetryAt, before.Add(2*time.Second), time.Now().Add(2*time.Second))
	// River holds the job until the due time the ledger says (within a hop).
	require.WithinDuration(t, *r.NextRetryAt, res.Job.ScheduledAt, 100*time.Millisecond)
}

func TestWorkLastFailureCancelsTheJobFailed(t *testing.T) {
	t.Parallel()
	b := setupWork(t, respondStatus(http.StatusInternalServerError), func(c *Config) { c.WebhookMaxRetries = -1 })
	id := b.emit(b.m)
	res, err := b.work(*b.ledger(id).JobID)
	require.NoError(t, err, "a cancellation is not handed to the error handler")
	require.Equal(t, river.EventKindJobCancelled, res.EventKind)
	require.NotEmpty(t, res.Job.Errors)
	require.Contains(t, res.Job.Errors[len(res.Job.Errors)-1].Error, "no fast retries left")
	r := b.ledger(id)
	require.Equal(t, db.DeliveryFailed, r.Status)
	require.Nil(t, r.NextRetryAt)
}

func TestWorkJobThatDoesNotOwnTheRowSendsNothing(t *testing.T) {
	t.Parallel()
	b := setupWork(t, nil, nil)
	id := b.emit(b.m)
	// A second job for the same delivery (a stale one, a River UI retry):
	// the row names the first.
	other, err := b.insertClient().Insert(context.Background(), db.DeliveryArgs{DeliveryID: id, MerchantID: b.m.ID}, nil)
	require.NoError(t, err)
	res, err := b.work(other.Job.ID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	require.Empty(t, b.rc.got())
	require.Equal(t, db.DeliveryPending, b.ledger(id).Status)
}

func TestWorkRerunOfDeliveredJobSendsNothing(t *testing.T) {
	t.Parallel()
	b := setupWork(t, nil, nil)
	id := b.emit(b.m)
	jobID := *b.ledger(id).JobID
	_, err := b.work(jobID)
	require.NoError(t, err)
	_, err = b.pool.Exec(context.Background(), `UPDATE river_job SET state = 'available', finalized_at = NULL WHERE id = $1`, jobID)
	require.NoError(t, err)
	res, err := b.work(jobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	require.Len(t, b.rc.got(), 1, "the re-run does not POST again")
	require.Equal(t, 1, b.ledger(id).Attempts)
}

func TestWorkNotYetDueSnoozesUntilDue(t *testing.T) {
	t.Parallel()
	b := setupWork(t, nil, nil)
	id := b.emit(b.m)
	_, err := b.pool.Exec(context.Background(), `UPDATE webhook_deliveries SET next_retry_at = now() + interval '2 s' WHERE id = $1`, id)
	require.NoError(t, err)
	due := b.ledger(id).NextRetryAt
	res, err := b.work(*b.ledger(id).JobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobSnoozed, res.EventKind)
	require.WithinDuration(t, *due, res.Job.ScheduledAt, 100*time.Millisecond)
	require.Empty(t, b.rc.got())
	r := b.ledger(id)
	require.Equal(t, db.DeliveryPending, r.Status, "not claimed")
	require.Zero(t, r.Attempts)
}

func TestWorkMerchantAtItsCapSnoozesWithoutClaiming(t *testing.T) {
	t.Parallel()
	b := setupWork(t, nil, func(c *Config) { c.MerchantConcurrency = 1 })
	id := b.emit(b.m)
	// The merchant's one slot is taken, by an attempt that has run long
	// enough to count as slow: the job snoozes at once.
	release, _ := b.worker.limiter.acquire(context.Background(), b.m.ID, -1)
	require.NotNil(t, release)
	b.worker.limiter.mu.Lock()
	for k := range b.worker.limiter.byID[b.m.ID].started {
		b.worker.limiter.byID[b.m.ID].started[k] = time.Now().Add(-time.Minute)
	}
	b.worker.limiter.mu.Unlock()
	res, err := b.work(*b.ledger(id).JobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobSnoozed, res.EventKind)
	require.Empty(t, b.rc.got())
	require.Equal(t, db.DeliveryPending, b.ledger(id).Status, "not claimed")
	release(0)
}

func TestWorkDisabledEndpointEndsTheDeliveryUnsent(t *testing.T) {
	t.Parallel()
	b := setupWork(t, nil, nil)
	id := b.emit(b.m)
	ep, err := b.store.EndpointGetDefault(context.Background(), b.m.ID)
	require.NoError(t, err)
	disabled := true
	_, err = b.store.EndpointPatch(context.Background(), b.m.ID, ep.ID, db.EndpointUpdate{Disabled: &disabled})
	require.NoError(t, err)
	res, err := b.work(*b.ledger(id).JobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	require.Empty(t, b.rc.got())
	r := b.ledger(id)
	require.Equal(t, db.DeliveryFailed, r.Status)
	require.Equal(t, "endpoint disabled", deref(r.ErrorMessage))
	require.Zero(t, r.Attempts)
}

func TestWorkDatabaseFaultBeforeTheClaimSpendsNoAttempt(t *testing.T) {
	t.Parallel()
	fault := errors.New("the database went away")
	b := setupWork(t, nil, func(c *Config) {
		c.faultFunc = func(point string) error {
			if point == faultLoad {
				return fault
			}
			return nil
		}
	})
	id := b.emit(b.m)
	before := time.Now()
	res, err := b.work(*b.ledger(id).JobID)
	require.ErrorIs(t, err, fault)
	require.Equal(t, river.EventKindJobFailed, res.EventKind)
	require.WithinRange(t, res.Job.ScheduledAt, before.Add(fallbackRetryDelay), time.Now().Add(fallbackRetryDelay))
	require.Empty(t, b.rc.got())
	r := b.ledger(id)
	require.Equal(t, db.DeliveryPending, r.Status)
	require.Zero(t, r.Attempts)
}

func TestWorkUnrecordedAttemptIsWrittenBeforeAnythingElse(t *testing.T) {
	t.Parallel()
	failWrite := true
	b := setupWork(t, nil, func(c *Config) {
		c.faultFunc = func(point string) error {
			if point == faultRecord && failWrite {
				return errors.New("commit lost")
			}
			return nil
		}
	})
	id := b.emit(b.m)
	jobID := *b.ledger(id).JobID
	_, err := b.work(jobID)
	require.ErrorContains(t, err, "commit lost")
	require.Len(t, b.rc.got(), 1)
	require.Zero(t, b.ledger(id).Attempts)
	failWrite = false
	_, err = b.pool.Exec(context.Background(), `UPDATE river_job SET state = 'available', finalized_at = NULL WHERE id = $1`, jobID)
	require.NoError(t, err)
	res, err := b.work(jobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	require.Len(t, b.rc.got(), 1, "the kept attempt is written, not made again")
	r := b.ledger(id)
	require.Equal(t, db.DeliverySucceeded, r.Status)
	require.Equal(t, 1, r.Attempts)
}

// insertClient is an insert-only River client on the test's database.
func (b *workBundle) insertClient() *river.Client[pgx.Tx] {
	b.t.Helper()
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(b.t, err)
	return client
}

// The fast twin of TestDeliveryRetryScheduleIsPunctual (make soak): a retry
// due far off (16 s) is never parked where only River's 5 s scheduler would
// bring it back. Each run leaves the job `available`, at most
// maxAvailableDelay ahead, and the hop that reaches the due time lands on
// it exactly, so the retry starts at the first fetch after it is due.
func TestWorkLongRetryHopsToItsDueTimeThroughAvailable(t *testing.T) {
	t.Parallel()
	b := setupWork(t, respondStatus(http.StatusInternalServerError), func(c *Config) { c.RetryBaseDelay = 16 * time.Second })
	id := b.emit(b.m)
	jobID := *b.ledger(id).JobID

	res, err := b.work(jobID)
	require.Error(t, err)
	due := *b.ledger(id).NextRetryAt
	require.WithinDuration(t, time.Now().Add(16*time.Second), due, time.Second)
	require.Equal(t, rivertype.JobStateAvailable, res.Job.State, "not retryable: River's scheduler would add up to 5 s")
	require.WithinDuration(t, time.Now().Add(maxAvailableDelay), res.Job.ScheduledAt, time.Second)

	// A run before the due time hops again, at most maxAvailableDelay.
	res, err = b.work(jobID)
	require.NoError(t, err)
	require.Equal(t, river.EventKindJobSnoozed, res.EventKind)
	require.Equal(t, rivertype.JobStateAvailable, res.Job.State)
	require.WithinDuration(t, time.Now().Add(maxAvailableDelay), res.Job.ScheduledAt, time.Second)

	// The last hop lands on the due time itself.
	_, err = b.pool.Exec(context.Background(), `UPDATE webhook_deliveries SET next_retry_at = now() + interval '1 s' WHERE id = $1`, id)
	require.NoError(t, err)
	due = *b.ledger(id).NextRetryAt
	res, err = b.work(jobID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateAvailable, res.Job.State)
	require.WithinDuration(t, due, res.Job.ScheduledAt, 50*time.Millisecond)
	require.Len(t, b.rc.got(), 1, "no attempt before its due time")
}
