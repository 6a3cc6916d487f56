package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/metrics"
)

type okArgs struct{}

func (okArgs) Kind() string { return "metrics_ok" }

type failArgs struct{}

func (failArgs) Kind() string { return "metrics_fail" }

func TestRiverJobsAreCountedByKindAndOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.Config{})

	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[okArgs]) error { return nil }))
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[failArgs]) error { return errors.New("boom") }))
	client, err := river.NewClient(riverpgxv5.New(dbtest.Pool(t)), &river.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers: workers,
	})
	require.NoError(t, err)
	stop := m.SubscribeRiver(client)
	require.NoError(t, client.Start(ctx))

	_, err = client.Insert(ctx, okArgs{}, nil)
	require.NoError(t, err)
	_, err = client.Insert(ctx, failArgs{}, &river.InsertOpts{MaxAttempts: 1}) // last attempt: discarded
	require.NoError(t, err)
	_, err = client.Insert(ctx, failArgs{}, &river.InsertOpts{MaxAttempts: 5}) // will retry
	require.NoError(t, err)

	worked := func(kind, outcome string) float64 {
		return counterValue(t, reg, "boohpay_river_jobs_worked_total",
			map[string]string{"queue": "default", "kind": kind, "outcome": outcome})
	}
	require.Eventually(t, func() bool {
		return worked("metrics_ok", "completed") == 1 && worked("metrics_fail", "discarded") == 1 &&
			worked("metrics_fail", "retryable") == 1
	}, 10*time.Second, 20*time.Millisecond)

	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, client.Stop(stopCtx))
	stop()

	families, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	require.Contains(t, names, "boohpay_river_job_queue_wait_seconds")
	require.Contains(t, names, "boohpay_river_job_run_duration_seconds")
}

// counterValue reads one counter series; 0 when it does not exist yet.
func counterValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
