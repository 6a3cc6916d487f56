package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/boohpay/boohpay/db"
)

// The bare River baseline: River alone, with a worker that does nothing,
// on the same queue with the same settings as the service's delivery queue
// (jobs.NewClient's defaults) and a pool built the same way (db.Connect on a
// URL of the same form). The gap between it and the service is everything
// BoohPay adds: the ledger, the HTTP POST, the signatures.
const (
	riverWorkers           = 100                    // jobs: workersDefault
	riverFetchPollInterval = 100 * time.Millisecond // jobs: fetchPollIntervalDefault
	riverFetchCooldown     = 5 * time.Millisecond   // jobs: deliveryFetchCooldown
	// riverInsertNotifyCooldown spaces insert notifications (River sends at
	// most one per queue per client-level FetchCooldown): db.NewStore's
	// inserting client uses 1 ms.
	riverInsertNotifyCooldown = time.Millisecond
)

// noopArgs has the shape of db.DeliveryArgs (one uuid) plus a sequence number.
type noopArgs struct {
	Seq        int       `json:"seq"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

func (noopArgs) Kind() string { return "bench_noop" }

func (noopArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: db.DeliveryQueue, MaxAttempts: 100}
}

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	started func(seq int, at time.Time) // may be nil
}

func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if w.started != nil {
		w.started(job.Args.Seq, time.Now())
	}
	return nil
}

// bareRiver is a started River client working noopArgs, and its pool.
type bareRiver struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
}

func startBareRiver(ctx context.Context, dbURL string, started func(seq int, at time.Time)) (*bareRiver, error) {
	pool, err := db.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{started: started})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// The baseline inserts with this client, so its client-level
		// cooldown is the service's inserting client's.
		FetchCooldown: riverInsertNotifyCooldown,
		Queues: map[string]river.QueueConfig{
			db.DeliveryQueue: {
				MaxWorkers:        riverWorkers,
				FetchPollInterval: riverFetchPollInterval,
				FetchCooldown:     riverFetchCooldown,
			},
		},
		Workers: workers,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	if err := client.Start(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &bareRiver{pool: pool, client: client}, nil
}

func (r *bareRiver) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.client.Stop(ctx)
	r.pool.Close()
}
