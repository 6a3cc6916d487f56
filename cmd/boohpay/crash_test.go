package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// TestCrashSIGKILLUnderLoad: the real binary, under a load of status
// changes, is killed with SIGKILL at random moments (during start-up, mid
// request, mid delivery) and restarted, several times. Afterwards every
// committed event has been delivered at least once, the ledger says
// SUCCEEDED for each, and the duplicates (an attempt whose 200 arrived but
// whose ledger write died with the process) are counted and reported.
//
// A delivery killed mid-attempt stays `running` in River until the webhook
// rescue (jobs/rescue.go) gives it up, which it does once the job has been
// running for longer than a delivery job's timeout plus 5 s, and by the
// leader only (a killed leader's lease lasts 15 s). The short version lets
// that time pass by moving the
// orphans' attempted_at back and clearing the dead leader's lease while no
// process runs; the soak version waits for real.
func TestCrashSIGKILLUnderLoad(t *testing.T) {
	t.Parallel()
	kills := pick(3, 25)
	url := dbtest.URL(t)
	pool := openPool(t, url)
	s := newSink(t, 50*time.Millisecond)
	key := newMerchant(t, url, s)
	env := baseEnv(url, "WEBHOOK_TIMEOUT=5s", "WEBHOOK_SWEEP_INTERVAL=2s")

	var base atomic.Pointer[string]
	l := newLoad(key, &base)
	stopLoad := l.run(context.Background(), 4)
	defer stopLoad()

	var logs []string
	for i := range kills {
		c := startChildNoWait(t, env)
		// A random moment from the process' start: up to ~1 s after it
		// is ready (start-up itself takes about that long here), longer
		// when soaking so that more deliveries complete in between.
		lifetime := time.Duration(rand.Int64N(int64(pick(2500*time.Millisecond, 6*time.Second))))
		deadline := time.Now().Add(lifetime)
		for time.Now().Before(deadline) {
			if line := c.logs.Msg("listening"); line != nil && base.Load() == nil {
				b := "http://" + line["addr"].(string)
				base.Store(&b)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if i == kills-1 {
			// The last kill, at least, lands mid-delivery: ready, under
			// load, with attempts in flight.
			require.Eventually(t, func() bool {
				if line := c.logs.Msg("listening"); line != nil && base.Load() == nil {
					b := "http://" + line["addr"].(string)
					base.Store(&b)
				}
				var n int
				_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job
					WHERE kind = 'webhook_delivery' AND state = 'running'`).Scan(&n)
				return n > 0
			}, 60*time.Second, 5*time.Millisecond, "no delivery in flight; log:\n%s", c.logs)
		}
		c.kill(t)
		base.Store(nil)
		logs = append(logs, c.logs.String())
		t.Logf("kill %d after %s (ok %d, failed %d)", i+1, lifetime.Round(time.Millisecond), l.ok.Load(), l.failed.Load())
	}

	ctx := context.Background()
	// A killed process' last statement (a River fetch, say) may still be
	// running in Postgres, and commits after the kill: wait until none of
	// the killed processes' statements runs, or the orphans it makes would
	// escape the rewind below and wait for River's real rescue horizon.
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 10*time.Millisecond, "statements of killed processes still running")
	var orphans int64
	if !soaking() {
		// No process runs: every `running` job is an orphan. Let River's
		// rescue horizon and the dead leader's lease pass (see above).
		tag, err := pool.Exec(ctx, `UPDATE river_job SET attempted_at = now() - interval '1 hour' WHERE state = 'running'`)
		require.NoError(t, err)
		orphans = tag.RowsAffected()
		_, err = pool.Exec(ctx, `DELETE FROM river_leader`)
		require.NoError(t, err)
	} else {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'running'`).Scan(&orphans))
	}

	require.Positive(t, orphans, "some kill left deliveries running: the rescue path was exercised")

	// The last start stays up, still under load for a moment, then alone.
	c := startChild(t, env)
	base.Store(&c.base)
	time.Sleep(pick(2*time.Second, 10*time.Second))
	stopLoad()
	require.Greater(t, l.ok.Load(), int64(10), "the load got through between the kills: %v", l.codes())

	f := requireAllDelivered(t, pool, s, pick(60*time.Second, 5*time.Minute))
	require.NoError(t, c.terminate(t, 60*time.Second), "exit 0 after SIGTERM")
	for _, lg := range append(logs, c.logs.String()) {
		requireNoSecretsIn(t, lg, key, *s.secret.Load())
	}
	reportFigures(t, "kills=%d events=%d receipts=%d duplicates=%d (%s) max_copies=%d orphaned_jobs=%d requests_ok=%d requests_failed=%d",
		kills, f.Events, f.Receipts, f.Duplicates, f.causes(), f.MaxCopies, orphans, l.ok.Load(), l.failed.Load())
}
