package jobs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// The real schedule, measured at the endpoint: each retry must start within
// 0.5 s of its due time. This is the package's one wall-clock
// assertion, and it is about the scheduling mechanism (delivery.go): with a
// 100 ms poll the expected lateness is ~0.1 s, so 0.5 s leaves a wide margin
// for -race and a loaded machine. Takes 31 s, so it runs in make soak
// (BOOHPAY_SOAK=1); TestWorkLongRetryHopsToItsDueTimeThroughAvailable pins
// the same mechanism in every make test.
func TestDeliveryRetryScheduleIsPunctual(t *testing.T) {
	if os.Getenv("BOOHPAY_SOAK") == "" {
		t.Skip("the real 31 s schedule: make soak")
	}
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, respondStatus(http.StatusInternalServerError))
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	b.start(Config{AllowPrivateNetworks: true, SweepInterval: time.Hour}) // the defaults: 1, 2, 4, 8, 16 s

	row := b.waitStatus(id, db.DeliveryFailed, 60*time.Second)
	require.Equal(t, 6, row.Attempts)
	got := rc.got()
	require.Len(t, got, 6)
	// The default recovery tail takes over: FAILED, the next attempt 5
	// minutes after the last one (then 30m, 2h, 5h, 10h, 10h).
	require.NotNil(t, row.NextRetryAt)
	require.WithinDuration(t, got[5].at.Add(5*time.Minute), *row.NextRetryAt, 2*time.Second)
	require.Equal(t, []time.Duration{5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour},
		Config{}.withDefaults().RecoverySchedule)
	const tolerance = 500 * time.Millisecond
	for i := 1; i < len(got); i++ {
		delay := time.Duration(1<<(i-1)) * time.Second
		// The previous attempt failed a moment after it arrived, so
		// measuring from its arrival counts that moment as lateness too.
		lateness := got[i].at.Sub(got[i-1].at) - delay
		t.Logf("retry %d after %s: lateness %s", i, delay, lateness)
		require.GreaterOrEqual(t, lateness, time.Duration(0), "retry %d came early", i)
		require.LessOrEqual(t, lateness, tolerance, "retry %d came late", i)
	}
}

// The operator's replay is the old service's statement, verbatim; the
// periodic sweep picks the rows up.
func TestDeliveryOperatorReplayBySQL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var healthy atomic.Bool
	rc := newReceiver(t, respondWhenHealthy(&healthy, http.StatusServiceUnavailable))
	m, _ := b.merchant(rc.URL)
	other, _ := b.merchant(rc.URL)
	ids := []uuid.UUID{b.emit(m), b.emit(m), b.emit(m)}
	otherID := b.emit(other)
	cfg := testConfig()
	cfg.WebhookMaxRetries = -1
	cfg.SweepInterval = 200 * time.Millisecond
	b.start(cfg)
	oldJobs := map[uuid.UUID]int64{}
	for _, id := range append(ids, otherID) {
		oldJobs[id] = *b.waitStatus(id, db.DeliveryFailed, 10*time.Second).JobID
	}

	healthy.Store(true)
	_, err := b.pool.Exec(context.Background(), `UPDATE webhook_deliveries SET status = 'PENDING', next_retry_at = now() WHERE status = 'FAILED' AND merchant_id = '`+m.ID.String()+`'`)
	require.NoError(t, err)

	for _, id := range ids {
		row := b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
		require.Equal(t, 2, row.Attempts, "the replay is a new cycle: one more attempt")
		require.NotEqual(t, oldJobs[id], *row.JobID, "with a new job")
	}
	require.Equal(t, db.DeliveryFailed, b.ledger(otherID).Status, "rows the statement did not touch stay FAILED")
	require.Len(t, rc.got(), 3+1+3)
}

// The sweep in batches of 50, with two sweepers at once: B sweeps while A
// holds its batch's rows locked, and no row gets two jobs.
func TestSweepConcurrentSweepersSplitBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m, _ := b.merchant("https://merchant.example.com/hooks")
	var eventID uuid.UUID
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO events (id, merchant_id, type, payload)
		VALUES (gen_random_uuid(), $1, 'webhook.test', '{"id":"x"}') RETURNING id`, m.ID).Scan(&eventID))
	insert := func(n int, status, nextRetry string, jobID *int64) {
		_, err := b.pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id)
			SELECT gen_random_uuid(), $1, $2, 'webhook.test', '{"id":"x"}', $3, `+nextRetry+`, $5
			FROM generate_series(1, $4)`, m.ID, eventID, status, n, jobID)
		require.NoError(t, err)
	}
	gone := int64(987654321)
	insert(130, db.DeliveryPending, "now() - interval '1 minute'", nil) // written by SQL, no job
	insert(20, db.DeliveryProcessing, "now()", &gone)                   // PROCESSING, its job gone
	insert(10, db.DeliveryPending, "now() + interval '1 hour'", nil)    // not due yet
	insert(10, db.DeliveryFailed, "NULL", nil)                          // not the sweep's
	live := []uuid.UUID{b.emit(m), b.emit(m)}                           // PENDING with a live job (no worker runs here)
	const eligible = 150

	txA, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	nA, fullA, err := b.store.DeliverySweepBatchTx(ctx, txA, 50)
	require.NoError(t, err)
	require.Equal(t, 50, nA)
	require.True(t, fullA)

	// B runs to the end while A's 50 rows are locked.
	var batchesB []int
	for {
		n, full, err := b.store.DeliverySweepBatch(ctx, 50)
		require.NoError(t, err)
		batchesB = append(batchesB, n)
		if !full {
			break
		}
	}
	require.Equal(t, []int{50, 50, 0}, batchesB, "B skipped A's locked rows")

	// A's jobs were inserted in A's transaction: rolling it back takes
	// them with it, and the rows are the next sweep's.
	require.NoError(t, txA.Rollback(ctx))
	n, full, err := b.store.DeliverySweepBatch(ctx, 50)
	require.NoError(t, err)
	require.Equal(t, 50, n)
	require.True(t, full)
	n, _, err = b.store.DeliverySweepBatch(ctx, 50)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left: every eligible row has a live job")

	require.Equal(t, eligible+len(live), b.count(`SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery'`))
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries d
		WHERE (d.status = 'PENDING' AND d.next_retry_at <= now())
		AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = d.job_id AND j.args->>'delivery_id' = d.id::text
			AND j.queue = 'webhooks' AND j.state = 'available')`), "every due row has its own available job")
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'PROCESSING'`), "healed to PENDING")
	require.Equal(t, 10, b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING' AND next_retry_at > now() AND job_id IS NULL`))
	require.Equal(t, 10, b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'FAILED' AND job_id IS NULL`))
	for _, id := range live {
		row := b.ledger(id)
		require.Equal(t, 1, b.count(`SELECT count(*) FROM river_job WHERE args->>'delivery_id' = $1`, id.String()))
		require.Equal(t, "available", b.jobState(*row.JobID))
	}
}

// The sweep heals a PROCESSING row whose job is gone, end to end.
func TestSweepHealsOrphanedProcessingDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	// The job vanished (deleted from River UI, say) while the row said PROCESSING.
	_, err := b.pool.Exec(context.Background(), `DELETE FROM river_job WHERE id = (SELECT job_id FROM webhook_deliveries WHERE id = $1)`, id)
	require.NoError(t, err)
	_, err = b.pool.Exec(context.Background(), `UPDATE webhook_deliveries SET status = 'PROCESSING' WHERE id = $1`, id)
	require.NoError(t, err)
	cfg := testConfig()
	cfg.SweepInterval = 200 * time.Millisecond
	b.start(cfg)
	row := b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	require.Equal(t, 1, row.Attempts)
	require.Len(t, rc.got(), 1)
}

// A delivered job that runs again (River retrying it from its UI, say) must
// not POST again: the ledger says SUCCEEDED.
func TestDeliveryRerunOfDeliveredJobDoesNotPost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	client := b.start(testConfig())
	row := b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	// River's completer finishes the job just after the ledger commit.
	require.Eventually(t, func() bool {
		j, err := client.JobGet(context.Background(), *row.JobID)
		require.NoError(t, err)
		return j.State == "completed"
	}, 10*time.Second, 10*time.Millisecond)

	_, err := client.JobRetry(context.Background(), *row.JobID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := client.JobGet(context.Background(), *row.JobID)
		require.NoError(t, err)
		return j.State == "completed" && j.Attempt == 2
	}, 10*time.Second, 10*time.Millisecond)
	require.Len(t, rc.got(), 1)
	require.Equal(t, 1, b.ledger(id).Attempts)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1`, id))
}

const crashEnv = "BOOHPAY_TEST_CRASH_DATABASE_URL"

// A real crash between the endpoint's 200 and the ledger write: a child
// process works the delivery and exits as soon as the response is in. The
// job is left running in River and the ledger as it was before the attempt
// (a quick attempt is never marked PROCESSING). Once River's
// rescuer gives the job up for stuck, it runs again, POSTs again (receivers
// dedupe on webhook-id) and the ledger ends SUCCEEDED.
func TestDeliveryCrashBetweenResponseAndLedger(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := db.NewStore(pool)
	require.NoError(t, err)
	b := &testBundle{t: t, pool: pool, store: store}
	rc := newReceiver(t, nil)
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)

	cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+url)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr), "helper: %v\n%s", err, out)
	require.Equal(t, crashExitCode, exitErr.ExitCode(), "helper output:\n%s", out)

	require.Len(t, rc.got(), 1, "the endpoint got the delivery and answered 200")
	row := b.ledger(id)
	require.Equal(t, db.DeliveryPending, row.Status)
	require.Zero(t, row.Attempts)
	require.Equal(t, "running", b.jobState(*row.JobID))

	// River rescues a running job once it has run longer than its timeout
	// and RescueStuckJobsAfter (a minute): let that minute pass.
	_, err = pool.Exec(context.Background(), `UPDATE river_job SET attempted_at = now() - interval '1 hour' WHERE id = $1`, *row.JobID)
	require.NoError(t, err)
	b.start(testConfig())

	row = b.waitStatus(id, db.DeliverySucceeded, 30*time.Second)
	require.Equal(t, 1, row.Attempts)
	require.Eventually(t, func() bool { return b.jobState(*row.JobID) == "completed" }, time.Minute, 10*time.Millisecond)
	got := rc.got()
	require.Len(t, got, 2)
	require.Equal(t, got[0].header.Get("webhook-id"), got[1].header.Get("webhook-id"))
	require.Equal(t, got[0].body, got[1].body)
}

const crashExitCode = 3

// TestDeliveryCrashHelper is the process that crashes, for
// TestDeliveryCrashBetweenResponseAndLedger; on its own it skips.
func TestDeliveryCrashHelper(t *testing.T) {
	url := os.Getenv(crashEnv)
	if url == "" {
		t.Skip("run by TestDeliveryCrashBetweenResponseAndLedger")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	store, err := db.NewStore(pool)
	require.NoError(t, err)
	cfg := testConfig().withDefaults()
	cfg.afterResponseFunc = func() { os.Exit(crashExitCode) }
	workers := river.NewWorkers()
	river.AddWorker(workers, newDeliveryWorker(store, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:                 map[string]river.QueueConfig{db.DeliveryQueue: {MaxWorkers: 1}},
		Workers:                workers,
		LeaderElectionDisabled: true, // so the test's own client leads at once afterwards
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	time.Sleep(20 * time.Second)
	t.Fatal("the delivery never got its response")
}

// Isolation: one merchant's endpoint hangs for the full timeout on every
// attempt, with 300 deliveries queued (three times the workers); another
// merchant's 50 deliveries, emitted afterwards, all arrive before a single
// hanging attempt has ended. The limiter keeps the hanging merchant to its
// 10 slots of 100 (limiter.go). The other merchant's commit-to-receipt
// latencies are logged, not asserted.
func TestDeliveryMerchantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var inFlight, maxInFlight, ended atomic.Int32
	release := make(chan struct{})
	hanging := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done(): // the worker's timeout
		}
		ended.Add(1)
		inFlight.Add(-1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	t.Cleanup(func() { close(release) }) // before the receiver closes
	healthy := newReceiver(t, nil)
	slow, _ := b.merchant(hanging.URL)
	fast, _ := b.merchant(healthy.URL)
	for range 300 {
		b.emit(slow)
	}
	cfg := testConfig()
	cfg.WebhookTimeout = 10 * time.Second // the real one; Workers and MerchantConcurrency are the defaults
	b.start(cfg)
	require.Eventually(t, func() bool { return inFlight.Load() == merchantConcurrencyDefault }, 10*time.Second, 5*time.Millisecond)

	committed := map[string]time.Time{}
	var ids []uuid.UUID
	for range 50 {
		id := b.emit(fast)
		committed[id.String()] = time.Now()
		ids = append(ids, id)
	}
	for _, id := range ids {
		b.waitStatus(id, db.DeliverySucceeded, 20*time.Second)
	}
	require.Zero(t, ended.Load(), "the other merchant's deliveries did not wait for a hanging attempt to end")
	require.LessOrEqual(t, maxInFlight.Load(), int32(merchantConcurrencyDefault))

	var latencies []time.Duration
	for _, r := range healthy.got() {
		latencies = append(latencies, r.at.Sub(committed[r.header.Get("X-BoohPay-Delivery")]))
	}
	slices.Sort(latencies)
	t.Logf("other merchant's commit-to-receipt while one hangs: p50 %s, p99 %s, max %s (n=%d)",
		latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1], len(latencies))
}
