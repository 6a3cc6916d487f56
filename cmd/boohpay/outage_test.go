package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// An endpoint down under live traffic gets every event once it is back,
// with nobody acting: each delivery's fast cycle fails during the outage,
// the delivery waits FAILED for its recovery attempt, and the sweep makes
// it once due. The real binary; under make soak, the real schedule's first
// step (5 minutes) and a 2-minute outage; under go test, a 2 s first step.
func TestEndpointOutageRecoveredByTheTail(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	s := newSink(t, 0)
	key := newMerchant(t, url, s)
	env := baseEnv(url)
	if !soaking() {
		env = append(env, "WEBHOOK_RECOVERY_SCHEDULE=2s,4s,8s,16s", "WEBHOOK_SWEEP_INTERVAL=500ms")
	}
	c := startChild(t, env)
	pool := openPool(t, url)

	s.down.Store(true)
	start := time.Now()
	var base atomic.Pointer[string]
	base.Store(&c.base)
	l := newLoad(key, &base)
	stop := l.run(context.Background(), 2)
	time.Sleep(pick(5*time.Second, 2*time.Minute)) // the outage, under traffic
	stop()
	// Wait until every delivery's fast cycle failed: FAILED, its recovery
	// attempt scheduled (not a single one delivered yet).
	var waiting, total int
	require.Eventually(t, func() bool {
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'FAILED'
			AND next_retry_at IS NOT NULL), count(*) FROM webhook_deliveries`).Scan(&waiting, &total))
		return total > 0 && waiting == total
	}, pick(60*time.Second, 5*time.Minute), 100*time.Millisecond)
	_, received, _ := s.counts()
	require.Zero(t, received)
	s.down.Store(false)
	back := time.Now()

	f := requireAllDelivered(t, pool, s, pick(60*time.Second, 15*time.Minute))
	var recovered int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries
		WHERE status = 'SUCCEEDED' AND recovery_attempts > 0`).Scan(&recovered))
	require.Equal(t, f.Events, recovered, "every event came through a recovery attempt")
	reportFigures(t, "outage %s under load: %d events, all FAILED then recovered by the tail (first step %s) %s after the endpoint came back; %d receipts, %d duplicates",
		back.Sub(start).Round(time.Second), f.Events, pick("2s", "5m"), time.Since(back).Round(time.Second), f.Receipts, f.Duplicates)
}
