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

// TestSIGTERMUnderLoad extends TestBinarySIGTERM and
// TestServeFinishesRunningDeliveries to a service under load: SIGTERM while
// requests and deliveries are in flight. The process exits 0, leaves no
// delivery job `running` behind (each in-flight attempt either finished and
// was recorded, or was handed back to River to run again), and after a
// restart every committed event is delivered, without waiting for River's
// rescuer (nothing was orphaned).
//
//   - finish: SHUTDOWN_TIMEOUT is ample, the endpoint answers within 0.5 s:
//     in-flight attempts finish and are recorded; nothing is left PROCESSING.
//   - hand back: SHUTDOWN_TIMEOUT=1s and the endpoint holds some requests
//     for 10 s: those attempts are cancelled and handed back.
func TestSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		shutdownTimeout string
		hold            func() time.Duration
		handBack        bool
	}{
		{"finish", "30s", func() time.Duration { return time.Duration(rand.Int64N(int64(500 * time.Millisecond))) }, false},
		{"hand back", "1s", func() time.Duration {
			if rand.IntN(3) == 0 {
				return 10 * time.Second
			}
			return time.Duration(rand.Int64N(int64(100 * time.Millisecond)))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := dbtest.URL(t)
			pool := openPool(t, url)
			s := newSink(t, 0)
			var slow atomic.Bool
			slow.Store(true)
			s.hold = func() time.Duration {
				if slow.Load() {
					return tc.hold()
				}
				return 0
			}
			key := newMerchant(t, url, s)
			env := baseEnv(url, "WEBHOOK_TIMEOUT=30s", "SHUTDOWN_TIMEOUT="+tc.shutdownTimeout)

			for round := range pick(1, 5) {
				c := startChild(t, env)
				var base atomic.Pointer[string]
				base.Store(&c.base)
				l := newLoad(key, &base)
				stopLoad := l.run(ctx, 4)
				// Under load for a while, with deliveries in flight: attempts
				// running, and when the endpoint holds some for 10 s, attempts
				// in flight long enough to be marked PROCESSING, so that their
				// hand-back shows in the ledger.
				inFlightSQL := `SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery' AND state = 'running'`
				if tc.handBack {
					inFlightSQL = `SELECT count(*) FROM webhook_deliveries WHERE status = 'PROCESSING'`
				}
				require.Eventually(t, func() bool {
					var n int
					_ = pool.QueryRow(ctx, inFlightSQL).Scan(&n)
					return n > 0 && l.ok.Load() > 20
				}, 60*time.Second, 5*time.Millisecond, "no delivery in flight; log:\n%s", c.logs)

				var inFlight int
				require.NoError(t, pool.QueryRow(ctx, inFlightSQL).Scan(&inFlight))
				require.NoError(t, c.terminate(t, 90*time.Second), "exit 0 after SIGTERM under load; log:\n%s", c.logs)
				stopLoad()

				var running, processing, handedBack int
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'running'`).Scan(&running))
				require.Zero(t, running, "a job left running would wait for River's rescuer")
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'PROCESSING'`).Scan(&processing))
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries d JOIN river_job j ON j.id = d.job_id
					WHERE d.status = 'PROCESSING' AND j.state IN ('available', 'retryable', 'scheduled')`).Scan(&handedBack))
				require.Equal(t, processing, handedBack, "every PROCESSING row's job was handed back")
				if tc.handBack {
					require.Positive(t, handedBack, "some attempts were held past SHUTDOWN_TIMEOUT and handed back")
					require.NotNil(t, c.logs.Msg("workers did not finish in time; cancelling"))
				} else {
					require.Zero(t, processing, "with time enough every in-flight attempt finished and was recorded")
					require.Nil(t, c.logs.Msg("workers did not finish in time; cancelling"))
				}
				requireNoSecretsIn(t, c.logs.String(), key, *s.secret.Load())
				t.Logf("round %d: SIGTERM with %d attempts in flight: %d handed back; requests ok %d, failed %d, answers %v",
					round+1, inFlight, handedBack, l.ok.Load(), l.failed.Load(), l.codes())
			}

			// A restart delivers everything; no rescue is needed.
			slow.Store(false)
			c := startChild(t, env)
			f := requireAllDelivered(t, pool, s, pick(60*time.Second, 3*time.Minute))
			require.NoError(t, c.terminate(t, 60*time.Second))
			reportFigures(t, "events=%d receipts=%d duplicates=%d", f.Events, f.Receipts, f.Duplicates)
		})
	}
}
