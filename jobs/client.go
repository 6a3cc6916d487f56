// Package jobs owns BoohPay's River side: the client that works jobs, the
// webhook delivery worker, and the periodic jobs (ledger sweep, idempotency
// key pruning). Jobs are inserted by db's outbox, inside the transactions
// that make them necessary.
package jobs

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/boohpay/boohpay/db"
)

// Config tunes the workers; zero values take the defaults of SPEC §2.
type Config struct {
	Workers             int           // delivery concurrency per process
	WebhookTimeout      time.Duration // per attempt
	WebhookMaxRetries   int           // retries after the first attempt
	SweepInterval       time.Duration
	SweepBatch          int
	IdempotencyInterval time.Duration
}

const (
	workersDefault             = 100
	webhookTimeoutDefault      = 10 * time.Second
	webhookMaxRetriesDefault   = 5
	sweepIntervalDefault       = 30 * time.Second
	sweepBatchDefault          = 50
	idempotencyIntervalDefault = time.Hour
)

func (c Config) withDefaults() Config {
	c.Workers = cmp.Or(c.Workers, workersDefault)
	c.WebhookTimeout = cmp.Or(c.WebhookTimeout, webhookTimeoutDefault)
	if c.WebhookMaxRetries == 0 {
		c.WebhookMaxRetries = webhookMaxRetriesDefault
	}
	c.SweepInterval = cmp.Or(c.SweepInterval, sweepIntervalDefault)
	c.SweepBatch = cmp.Or(c.SweepBatch, sweepBatchDefault)
	c.IdempotencyInterval = cmp.Or(c.IdempotencyInterval, idempotencyIntervalDefault)
	return c
}

// NewClient returns a River client with every worker and periodic job
// registered. Start it to work jobs; a client that is never started can
// still insert.
func NewClient(pool *pgxpool.Pool, store *db.Store, log *slog.Logger, cfg Config) (*river.Client[pgx.Tx], error) {
	cfg = cfg.withDefaults()
	workers := river.NewWorkers()
	river.AddWorker(workers, &IdempotencyPruneWorker{store: store})

	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: log,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cfg.Workers},
		},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.IdempotencyInterval),
				func() (river.JobArgs, *river.InsertOpts) { return IdempotencyPruneArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating river client: %w", err)
	}
	return client, nil
}
