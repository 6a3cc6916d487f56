package jobs

import (
	"context"

	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
)

// IdempotencyPruneArgs is the periodic job that deletes expired Idempotency-Key records.
type IdempotencyPruneArgs struct{}

func (IdempotencyPruneArgs) Kind() string { return "idempotency_prune" }

// IdempotencyPruneWorker deletes expired keys in batches.
type IdempotencyPruneWorker struct {
	river.WorkerDefaults[IdempotencyPruneArgs]
	store *db.Store
}

func (w *IdempotencyPruneWorker) Work(ctx context.Context, job *river.Job[IdempotencyPruneArgs]) error {
	_, err := w.store.IdempotencyKeyDeleteExpired(ctx)
	return err
}
