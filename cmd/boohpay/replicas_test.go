package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// TestTwoReplicasOneDatabase runs two replicas of the service (ROLE=all) on
// one database under load spread over both. Every event is delivered; the
// periodic sweep is enqueued by one leader only (River's periodic jobs: no
// two sweep jobs within half an interval of each other, one river_leader);
// an operator replay of more rows than a sweep batch is swept exactly once
// (each replayed delivery gets exactly one new job and one more receipt);
// and when one replica stops, the other carries on sweeping.
func TestTwoReplicasOneDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool := openPool(t, url)
	s := newSink(t, 20*time.Millisecond)
	key := newMerchant(t, url, s)
	const interval = time.Second
	env := baseEnv(url, "WEBHOOK_TIMEOUT=5s", "WEBHOOK_SWEEP_INTERVAL=1s", "WEBHOOK_SWEEP_BATCH=20",
		"LOG_LEVEL=debug") // River says who leads at debug level

	a, b := startChild(t, env), startChild(t, env)
	var baseA, baseB atomic.Pointer[string]
	baseA.Store(&a.base)
	baseB.Store(&b.base)
	l := newLoad(key, &baseA, &baseB)
	stopLoad := l.run(ctx, 4)
	defer stopLoad()
	start := time.Now()

	// One leader at a time, all along.
	leaders := map[string]bool{}
	watchLeader := func() {
		var n int
		var id string
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), coalesce(max(leader_id), '') FROM river_leader`).Scan(&n, &id))
		require.LessOrEqual(t, n, 1)
		if id != "" {
			leaders[id] = true
		}
	}
	require.Eventually(t, func() bool { watchLeader(); return l.ok.Load() > int64(pick(100, 1500)) }, pick(60*time.Second, 5*time.Minute), 50*time.Millisecond)
	stopLoad()
	requireAllDelivered(t, pool, s, 60*time.Second)

	// An operator replays deliveries by SQL: more than a sweep batch.
	replayed := replay(t, pool, pick(60, 300))
	require.Eventually(t, func() bool {
		watchLeader()
		return sweptOnce(t, pool, replayed)
	}, 60*time.Second, 50*time.Millisecond, "the replay was not swept")
	f := requireAllDelivered(t, pool, s, 60*time.Second)
	got, _, _ := s.counts()
	for id, wantReceipts := range replayed {
		require.Equal(t, wantReceipts, got[id], "event %s: one more receipt for its replay", id)
	}

	// Both replicas worked deliveries.
	var workers int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE kind = 'webhook_delivery'`).Scan(&workers))
	require.Equal(t, 2, workers, "deliveries were worked by both replicas")

	// The sweep was enqueued once per interval, by one leader.
	// Several intervals with both replicas up, to see one sweeper at work.
	require.Eventually(t, func() bool {
		watchLeader()
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'webhook_sweep' AND created_at >= $1`, start).Scan(&n))
		return n >= pick(5, 30)
	}, pick(60*time.Second, 3*time.Minute), 50*time.Millisecond)
	requireOneSweeper(t, pool, start, interval)
	require.Len(t, leaders, 1, "one leader while both ran")

	// The leader stops; the other replica takes over, sweeping included.
	const gained = "leadership.Elector: Gained leadership"
	leader, other := a, b
	if b.logs.Msg(gained) != nil {
		leader, other = b, a
	}
	require.NotNil(t, leader.logs.Msg(gained), "one of the replicas led")
	require.Nil(t, other.logs.Msg(gained), "only one replica led")
	require.NoError(t, leader.terminate(t, 60*time.Second))
	stopped := time.Now()
	replayedAgain := replay(t, pool, 30)
	require.Eventually(t, func() bool { return sweptOnce(t, pool, replayedAgain) }, 90*time.Second, 50*time.Millisecond,
		"the remaining replica did not sweep; log:\n%s", other.logs)
	require.NotNil(t, other.logs.Msg(gained), "the other replica took over")
	requireAllDelivered(t, pool, s, 60*time.Second)
	var sweepsAfter int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'webhook_sweep' AND created_at > $1`, stopped).Scan(&sweepsAfter))
	require.Positive(t, sweepsAfter)
	requireOneSweeper(t, pool, start, interval)
	require.NoError(t, other.terminate(t, 60*time.Second))

	var sweeps int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'webhook_sweep'`).Scan(&sweeps))
	reportFigures(t, "events=%d receipts=%d replayed=%d duplicates_beyond_replays=%d sweep_jobs=%d over %s",
		f.Events, f.Receipts, len(replayed), f.Duplicates-len(replayed), sweeps, time.Since(start).Round(time.Second))
}

// replay resets n SUCCEEDED deliveries to PENDING, due now, with the old
// service's operator statement, and returns their event ids with the
// receipts each should reach: one more than now.
func replay(t *testing.T, pool *pgxpool.Pool, n int) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT event_id::text FROM webhook_deliveries WHERE status = 'SUCCEEDED'
		AND (SELECT count(*) FROM river_job j WHERE j.args->>'delivery_id' = webhook_deliveries.id::text) = 1
		ORDER BY random() LIMIT $1`, n)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, n, len(ids), "SUCCEEDED deliveries to replay")
	_, err = pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'PENDING', next_retry_at = now() WHERE status = 'SUCCEEDED' AND event_id = ANY($1::uuid[])`, ids)
	require.NoError(t, err)
	return withReplayReceipts(ids)
}

func withReplayReceipts(ids []string) map[string]int {
	m := make(map[string]int, len(ids))
	for _, id := range ids {
		m[id] = 2 // the first delivery and the replay
	}
	return m
}

// sweptOnce reports whether every replayed delivery is SUCCEEDED again; it
// fails the test if any got more than one new job.
func sweptOnce(t *testing.T, pool *pgxpool.Pool, replayed map[string]int) bool {
	t.Helper()
	ids := make([]string, 0, len(replayed))
	for id := range replayed {
		ids = append(ids, id)
	}
	var done, overJobbed int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT
			count(*) FILTER (WHERE d.status = 'SUCCEEDED' AND jobs = 2),
			count(*) FILTER (WHERE jobs > 2)
		FROM webhook_deliveries d,
			LATERAL (SELECT count(*) AS jobs FROM river_job j WHERE j.args->>'delivery_id' = d.id::text) j
		WHERE d.event_id = ANY($1::uuid[])`, ids).Scan(&done, &overJobbed))
	require.Zero(t, overJobbed, "a replayed delivery was swept twice")
	return done == len(ids)
}

// requireOneSweeper checks that no two sweep jobs were scheduled within half
// an interval of each other: two leaders would each enqueue one per interval,
// on schedules of their own. The schedule (scheduled_at), not the insert
// time: a leader that a loaded machine holds up past a run catches up with
// two inserts in a row, both on its one schedule. A sweep that failed and
// was retried is left out: River moved its scheduled_at to the retry.
func requireOneSweeper(t *testing.T, pool *pgxpool.Pool, since time.Time, interval time.Duration) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT scheduled_at FROM river_job WHERE kind = 'webhook_sweep' AND created_at >= $1
		AND errors IS NULL ORDER BY scheduled_at`, since)
	require.NoError(t, err)
	at, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	require.NoError(t, err)
	require.Greater(t, len(at), 2, "the sweep ran")
	for i := 1; i < len(at); i++ {
		require.GreaterOrEqual(t, at[i].Sub(at[i-1]), interval/2, "sweep jobs %d and %d scheduled %s apart: two sweepers", i-1, i, at[i].Sub(at[i-1]))
	}
}
