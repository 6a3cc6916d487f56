// Package jobs owns BoohPay's River side: the client that works jobs, the
// webhook delivery worker, and the periodic jobs (ledger sweep, idempotency
// key pruning, ledger retention). Jobs are inserted by db's outbox, inside
// the transactions that make them necessary.
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
	"github.com/boohpay/boohpay/metrics"
)

// Config tunes the workers; zero values take the *Default constants below,
// which are the environment's documented defaults (withDefaults).
type Config struct {
	Workers             int           // delivery concurrency per process
	MerchantConcurrency int           // attempts in flight per merchant per process (see limiter.go)
	WebhookTimeout      time.Duration // per attempt
	WebhookMaxRetries   int           // retries after the first attempt; 0 means the default, negative means none
	RetryBaseDelay      time.Duration // the first retry's delay; each next one doubles (1 s: 1, 2, 4, 8, 16 s)
	FetchPollInterval   time.Duration // how often the delivery queue is polled for due retries (see delivery.go)
	// AllowPrivateNetworks lets deliveries reach loopback and private
	// addresses (WEBHOOK_ALLOW_PRIVATE_NETWORKS); otherwise the dialer
	// refuses them after DNS resolution.
	AllowPrivateNetworks bool
	// RecoverySchedule is the recovery tail: after a fast cycle fails, one
	// attempt after each step (WEBHOOK_RECOVERY_SCHEDULE). nil means the
	// default; an empty, non-nil schedule turns the tail off (the old
	// service's behaviour).
	RecoverySchedule []time.Duration
	// DisableAfter disables an endpoint whose every attempt failed for this
	// long (WEBHOOK_DISABLE_AFTER); 0 means the default, negative never.
	DisableAfter        time.Duration
	SweepInterval       time.Duration
	SweepBatch          int
	IdempotencyInterval time.Duration
	// Retention is how long delivery attempts and delivered deliveries are
	// kept (WEBHOOK_RETENTION); see retention.go.
	Retention time.Duration
	// PollOnly makes River poll instead of LISTENing (RIVER_POLL_ONLY), for
	// connection poolers in transaction mode; see docs/SCALING.md.
	PollOnly bool
	// Metrics counts delivery attempts (webhook_deliveries_total & co.);
	// nil counts nothing.
	Metrics *metrics.Metrics

	// afterResponseFunc, when set, runs between an attempt's response and
	// its ledger write: tests crash the process there.
	afterResponseFunc func()
	// faultFunc, when set, is asked at each point where our own side can
	// fail (faultLoad, faultRecord); tests return an error there, as the
	// database would.
	faultFunc func(point string) error
}

const (
	workersDefault             = db.DeliveryWorkers
	merchantConcurrencyDefault = 10
	webhookMaxRetriesDefault   = 5
	retryBaseDelayDefault      = time.Second
	disableAfterDefault        = 72 * time.Hour
	fetchPollIntervalDefault   = db.DeliveryFetchPollInterval
	sweepIntervalDefault       = 30 * time.Second
	sweepBatchDefault          = 50
	idempotencyIntervalDefault = time.Hour
	retentionDefault           = 30 * 24 * time.Hour
	retentionInterval          = time.Hour

	// otherWorkers works the default queue: the periodic jobs.
	otherWorkers = 10
	// rescueAfterMin is River's floor for RescueStuckJobsAfter (its
	// JobTimeout default). River's rescuer is the backstop for every job
	// kind; stranded delivery jobs are rescued sooner (rescue.go).
	rescueAfterMin = time.Minute
)

// WebhookTimeoutDefault bounds one attempt (WEBHOOK_TIMEOUT's default).
const WebhookTimeoutDefault = 10 * time.Second

// RecoveryScheduleDefault is WEBHOOK_RECOVERY_SCHEDULE's default: after the
// fast cycle, attempts 5 m, 30 m, 2 h, 5 h, 10 h and 10 h apart (27 h 35 m
// in all, about Svix's), each driven by the sweep.
var RecoveryScheduleDefault = []time.Duration{
	5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

func (c Config) withDefaults() Config {
	c.Workers = cmp.Or(c.Workers, workersDefault)
	c.MerchantConcurrency = cmp.Or(c.MerchantConcurrency, merchantConcurrencyDefault)
	c.WebhookTimeout = cmp.Or(c.WebhookTimeout, WebhookTimeoutDefault)
	switch {
	case c.WebhookMaxRetries == 0:
		c.WebhookMaxRetries = webhookMaxRetriesDefault
	case c.WebhookMaxRetries < 0:
		c.WebhookMaxRetries = 0
	}
	c.RetryBaseDelay = cmp.Or(c.RetryBaseDelay, retryBaseDelayDefault)
	if c.RecoverySchedule == nil {
		c.RecoverySchedule = RecoveryScheduleDefault
	}
	switch {
	case c.DisableAfter == 0:
		c.DisableAfter = disableAfterDefault
	case c.DisableAfter < 0:
		c.DisableAfter = 0 // db: never
	}
	c.FetchPollInterval = cmp.Or(c.FetchPollInterval, fetchPollIntervalDefault)
	c.SweepInterval = cmp.Or(c.SweepInterval, sweepIntervalDefault)
	c.SweepBatch = cmp.Or(c.SweepBatch, sweepBatchDefault)
	c.IdempotencyInterval = cmp.Or(c.IdempotencyInterval, idempotencyIntervalDefault)
	c.Retention = cmp.Or(c.Retention, retentionDefault)
	return c
}

// NewClient returns a River client on store's pool with every worker and
// periodic job registered. Start it to work jobs; a client that is never
// started can still insert.
func NewClient(store *db.Store, log *slog.Logger, cfg Config) (*river.Client[pgx.Tx], error) {
	return newClient(store.Pool, store, log, cfg)
}

// newClient is NewClient with River on its own pool: a test puts River's
// connections, and only those, behind a fault proxy.
func newClient(riverPool *pgxpool.Pool, store *db.Store, log *slog.Logger, cfg Config) (*river.Client[pgx.Tx], error) {
	cfg = cfg.withDefaults()
	delivery := newDeliveryWorker(store, log, cfg)
	workers := river.NewWorkers()
	river.AddWorker(workers, &IdempotencyPruneWorker{store: store})
	river.AddWorker(workers, delivery)
	river.AddWorker(workers, &SweepWorker{store: store, log: log, batch: cfg.SweepBatch})
	river.AddWorker(workers, newRetentionWorker(store, log, cfg.Retention))
	river.AddWorker(workers, &RescueWorker{store: store, log: log, stuckAfter: delivery.timeout() + rescueSlack})

	client, err := river.NewClient(riverpgxv5.New(riverPool), &river.Config{
		Logger: newRiverLogger(log),
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: otherWorkers},
			db.DeliveryQueue: {
				MaxWorkers:        cfg.Workers,
				FetchPollInterval: cfg.FetchPollInterval,
				FetchCooldown:     min(db.DeliveryFetchCooldown, cfg.FetchPollInterval),
			},
		},
		Workers:              workers,
		PollOnly:             cfg.PollOnly,
		RescueStuckJobsAfter: max(rescueAfterMin, delivery.timeout()),
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.IdempotencyInterval),
				func() (river.JobArgs, *river.InsertOpts) { return IdempotencyPruneArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
			// Periodic jobs are enqueued by the elected leader only, so
			// one sweep runs per interval however many processes work.
			river.NewPeriodicJob(river.PeriodicInterval(cfg.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
			// Stranded delivery jobs go back to work about one job
			// timeout after their fetch (see rescue.go).
			river.NewPeriodicJob(river.PeriodicInterval(rescueInterval),
				func() (river.JobArgs, *river.InsertOpts) { return RescueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(retentionInterval),
				func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating river client: %w", err)
	}
	return client, nil
}
