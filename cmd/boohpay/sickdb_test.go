package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// TestPostgresFrozenUnderLoad freezes the service's Postgres under load (a
// TCP proxy in the test stops forwarding: connections stay open and nothing
// answers, as with SIGSTOP or a network that drops packets) and thaws it.
// While it is frozen every request answers within DATABASE_TIMEOUT (plus
// the time to write the answer): 503 in the error shape with Retry-After,
// or a 2xx committed just before; no client gives up on a hang. Once thawed
// the service goes on by itself and every committed event is delivered.
func TestPostgresFrozenUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool := openPool(t, url)
	s := newSink(t, 20*time.Millisecond)
	key := newMerchant(t, url, s)
	proxy := dbtest.NewProxy(t, url)

	c := startChild(t, baseEnv(proxy.URL(url), "WEBHOOK_TIMEOUT=5s", "WEBHOOK_SWEEP_INTERVAL=2s", "DATABASE_TIMEOUT=1s"))
	var base atomic.Pointer[string]
	base.Store(&c.base)
	l := newLoad(key, &base)

	var frozen atomic.Bool
	var mu sync.Mutex
	var problems []string
	var answers, unavailable int
	var slowest time.Duration
	l.onAnswer = func(code int, body []byte, took time.Duration) {
		if !frozen.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		answers++
		slowest = max(slowest, took)
		switch {
		case code == http.StatusServiceUnavailable:
			unavailable++
			if p := errorShapeProblem(body, "service_unavailable"); p != "" {
				problems = append(problems, p)
			}
		case code >= 200 && code < 300:
		default:
			problems = append(problems, fmt.Sprintf("HTTP %d after %s: %s", code, took, body))
		}
	}
	stopLoad := l.run(ctx, 4)
	defer stopLoad()
	require.Eventually(t, func() bool { return l.ok.Load() > 40 }, 60*time.Second, 10*time.Millisecond)

	freezeFor := pick(3*time.Second, 45*time.Second)
	frozen.Store(true)
	proxy.Freeze()
	start := time.Now()
	for time.Since(start) < freezeFor {
		req, _ := http.NewRequest(http.MethodGet, c.base+"/v1/payments", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		require.NoError(t, err, "a request while the database is frozen must be answered, not hang")
		res.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
		require.NotEmpty(t, res.Header.Get("Retry-After"))
		time.Sleep(200 * time.Millisecond)
	}
	proxy.Thaw()
	frozen.Store(false)
	thawed := time.Now()

	require.Eventually(t, func() bool {
		code, _ := l.do(ctx, http.MethodGet, c.base+"/v1/payments", "")
		return code == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "the service did not recover; log:\n%s", c.logs)
	okBefore := l.ok.Load()
	require.Eventually(t, func() bool { return l.ok.Load() > okBefore+40 }, 60*time.Second, 10*time.Millisecond)
	stopLoad()

	f := requireAllDelivered(t, pool, s, pick(90*time.Second, 5*time.Minute))
	mu.Lock()
	require.Empty(t, problems, "answers while the database was frozen")
	require.Positive(t, unavailable, "the load saw the freeze as 503s")
	mu.Unlock()
	require.NoError(t, c.terminate(t, 60*time.Second))
	reportFigures(t, "frozen=%s answers_while_frozen=%d (503: %d, slowest %s) events=%d receipts=%d duplicates=%d (%s) recovered_after=%s",
		freezeFor, answers, unavailable, slowest.Round(time.Millisecond), f.Events, f.Receipts, f.Duplicates, f.causes(),
		time.Since(thawed).Round(time.Second))
}

// TestReplicaSIGKILLUnderLoad kills one of two replicas (the leader, mid
// delivery) with SIGKILL under load. The other carries on, becomes leader,
// and puts the dead one's stranded delivery jobs back to work about one
// delivery job timeout after their fetch (the webhook rescue); every
// committed event is delivered. The duplicates and their causes are
// reported: a stranded job whose POST had reached the merchant before the
// kill is sent again.
func TestReplicaSIGKILLUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	pool := openPool(t, url)
	s := newSink(t, 50*time.Millisecond)
	key := newMerchant(t, url, s)
	env := baseEnv(url, "WEBHOOK_TIMEOUT=5s", "WEBHOOK_SWEEP_INTERVAL=2s", "LOG_LEVEL=debug")

	a, b := startChild(t, env), startChild(t, env)
	var baseA, baseB atomic.Pointer[string]
	baseA.Store(&a.base)
	baseB.Store(&b.base)
	l := newLoad(key, &baseA, &baseB)
	stopLoad := l.run(ctx, 4)
	defer stopLoad()

	const gained = "leadership.Elector: Gained leadership"
	require.Eventually(t, func() bool {
		return (a.logs.Msg(gained) != nil || b.logs.Msg(gained) != nil) && l.ok.Load() > int64(pick(200, 2000))
	}, pick(60*time.Second, 5*time.Minute), 10*time.Millisecond)
	leader, survivor, leaderBase := a, b, &baseA
	if b.logs.Msg(gained) != nil {
		leader, survivor, leaderBase = b, a, &baseB
	}
	// Mid-delivery: the leader has attempts in flight.
	var leaderID string
	require.Eventually(t, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT coalesce(max(leader_id), '') FROM river_leader`).Scan(&leaderID)
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'running' AND kind = 'webhook_delivery'
			AND attempted_by[array_upper(attempted_by, 1)] = $1`, leaderID).Scan(&n)
		return leaderID != "" && n > 0
	}, 60*time.Second, time.Millisecond)
	leader.kill(t)
	leaderBase.Store(nil)
	killed := time.Now()
	// What the dead process left running, once its last statements ended.
	var orphans []int64
	require.Eventually(t, func() bool {
		var busy int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND state <> 'idle' AND backend_start < $1`, killed).Scan(&busy)
		return busy == 0
	}, 30*time.Second, 10*time.Millisecond)
	rows, err := pool.Query(ctx, `SELECT id FROM river_job WHERE state = 'running' AND kind = 'webhook_delivery'
		AND attempted_by[array_upper(attempted_by, 1)] = $1`, leaderID)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		orphans = append(orphans, id)
	}
	require.NoError(t, rows.Err())

	// The survivor serves on, alone, under load for a while.
	okBefore := l.ok.Load()
	require.Eventually(t, func() bool { return l.ok.Load() > okBefore+int64(pick(100, 1000)) }, 5*time.Minute, 10*time.Millisecond)
	stopLoad()
	f := requireAllDelivered(t, pool, s, pick(2*time.Minute, 5*time.Minute))
	// The survivor wins the election once the dead leader's term runs out
	// (River's leader TTL), which may be after the backlog is delivered.
	require.Eventually(t, func() bool { return survivor.logs.Msg(gained) != nil }, 2*time.Minute, 10*time.Millisecond,
		"the survivor took over")

	// When the stranded jobs went out again, counted from the kill.
	var lastOrphanDone time.Duration
	if len(orphans) > 0 {
		var ms float64
		require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(d.updated_at) - $2::timestamptz) * 1000, 0)
			FROM webhook_deliveries d WHERE d.job_id = ANY($1)`, orphans, killed).Scan(&ms))
		lastOrphanDone = time.Duration(ms) * time.Millisecond
	}
	require.NoError(t, survivor.terminate(t, 60*time.Second))
	requireNoSecretsIn(t, leader.logs.String()+survivor.logs.String(), key, *s.secret.Load())
	reportFigures(t, "events=%d receipts=%d duplicates=%d (%s) max_copies=%d orphaned_jobs=%d last_orphan_delivered_after_kill=%s",
		f.Events, f.Receipts, f.Duplicates, f.causes(), f.MaxCopies, len(orphans), lastOrphanDone.Round(time.Second))
}
