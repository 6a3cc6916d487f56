package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// A fetch whose answer is lost to a connection cut leaves its job `running`
// in Postgres with no process working it. The webhook rescue puts it back to
// work once it has been running for longer than a delivery job's timeout
// (plus rescueSlack), not after River's rescuer's minute-plus; the endpoint
// gets the delivery once (the lost fetch never reached it).
func TestDeliveryStrandedByACutFetchIsRescued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rc := newReceiver(t, nil)
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	jobID := *b.ledger(id).JobID

	// River's connections go through the proxy; the store's (the ledger,
	// the checks below) do not.
	url := b.pool.Config().ConnString()
	proxy := dbtest.NewProxy(t, url)
	// The fetch's answer is the first thing River reads that names the
	// delivery (its job's args).
	lost := proxy.LoseAnswerContaining([]byte(id.String()))
	riverPool, err := pgxpool.New(ctx, proxy.URL(url))
	require.NoError(t, err)
	t.Cleanup(riverPool.Close)

	cfg := testConfig()
	client, err := newClient(riverPool, b.store, testLogger(t), cfg)
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.StopAndCancel(stopCtx)
	})

	select {
	case <-lost:
	case <-time.After(60 * time.Second):
		t.Fatal("River never fetched the job")
	}
	// Committed before its answer was lost: running, worked by no one.
	require.Eventually(t, func() bool { return b.jobState(jobID) == "running" }, 10*time.Second, 10*time.Millisecond)
	var fetchedAt time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT attempted_at FROM river_job WHERE id = $1`, jobID).Scan(&fetchedAt))
	require.Empty(t, rc.got(), "the lost fetch sent nothing")

	// "Does not hang" bound: the job timeout plus slack plus two rescue
	// intervals, and as much again for a loaded machine.
	w := newDeliveryWorker(b.store, testLogger(t), cfg.withDefaults())
	stuckAfter := w.timeout() + rescueSlack
	b.waitStatus(id, db.DeliverySucceeded, 2*(stuckAfter+2*rescueInterval))
	require.Len(t, rc.got(), 1, "delivered once")

	// It was this rescue, and not before the job's own timeout had passed
	// (a live worker's run would have ended by then).
	var errs [][]byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT errors FROM river_job WHERE id = $1`, jobID).Scan(&errs))
	require.NotEmpty(t, errs)
	var first struct {
		At    time.Time `json:"at"`
		Error string    `json:"error"`
	}
	require.NoError(t, json.Unmarshal(errs[0], &first))
	require.Contains(t, first.Error, "rescued by the webhook rescue")
	require.GreaterOrEqual(t, first.At.Sub(fetchedAt), stuckAfter, "rescued while it could still have been running")
	t.Logf("fetched at %s, rescued %s later (stranded after %s)", fetchedAt.Format(time.TimeOnly), first.At.Sub(fetchedAt).Round(time.Millisecond), stuckAfter)
}
