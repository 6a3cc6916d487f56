package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
)

// SweepArgs is the periodic job (every WEBHOOK_SWEEP_INTERVAL, enqueued by
// the leader) that keeps the ledger and River in step: every PENDING
// delivery that is due and has no live job gets one, and every PROCESSING
// delivery whose job is gone goes back to PENDING with a new job. That makes
// the operator's replay a plain UPDATE:
//
//	UPDATE webhook_deliveries SET status = 'PENDING', next_retry_at = now() WHERE status = 'FAILED' AND …;
type SweepArgs struct{}

func (SweepArgs) Kind() string { return "webhook_sweep" }

// SweepWorker sweeps in batches of WEBHOOK_SWEEP_BATCH, one transaction per
// batch (see db.Store.DeliverySweepBatchTx), until a batch comes back short.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	store *db.Store
	log   *slog.Logger
	batch int
}

func (w *SweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	total := 0
	for {
		n, full, err := w.store.DeliverySweepBatch(ctx, w.batch)
		if err != nil {
			return fmt.Errorf("sweeping deliveries after %d: %w", total, err)
		}
		total += n
		if !full {
			break
		}
	}
	if total > 0 {
		w.log.InfoContext(ctx, "webhook sweep enqueued deliveries", "deliveries", total)
	}
	return nil
}
