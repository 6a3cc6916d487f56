package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
)

const (
	// retentionBatch rows go per DELETE: small enough that each statement
	// holds its row locks for milliseconds.
	retentionBatch = 1000
	// retentionBudget bounds one run, well under River's job timeout (1 min)
	// and its stuck-job rescue: a large backlog is worked off over several
	// runs instead of by one long job.
	retentionBudget = 30 * time.Second
)

// RetentionArgs is the periodic job that prunes the delivery ledger.
type RetentionArgs struct{}

func (RetentionArgs) Kind() string { return "webhook_ledger_retention" }

// RetentionWorker deletes delivery attempts and delivered deliveries older
// than its period (WEBHOOK_RETENTION); see db.Store.LedgerPrune for what is
// kept.
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	store  *db.Store
	log    *slog.Logger
	period time.Duration
	batch  int
	budget time.Duration
}

func newRetentionWorker(store *db.Store, log *slog.Logger, period time.Duration) *RetentionWorker {
	return &RetentionWorker{store: store, log: log, period: period, batch: retentionBatch, budget: retentionBudget}
}

func (w *RetentionWorker) Work(ctx context.Context, job *river.Job[RetentionArgs]) error {
	now := time.Now()
	res, err := w.store.LedgerPrune(ctx, db.LedgerPruneParams{
		Before: now.Add(-w.period),
		Batch:  w.batch,
		Until:  now.Add(w.budget),
	})
	if err != nil {
		return err
	}
	if res.Attempts > 0 || res.Deliveries > 0 || !res.Done {
		w.log.InfoContext(ctx, "pruned webhook ledger",
			"attempts", res.Attempts, "deliveries", res.Deliveries, "done", res.Done, "retention", w.period)
	}
	return nil
}
