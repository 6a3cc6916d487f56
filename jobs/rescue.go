package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
)

// RescueArgs is the periodic job (every rescueInterval, enqueued by the
// leader) that puts stranded delivery jobs back to work: jobs left `running`
// in Postgres with no process working them, because the answer to the fetch
// that marked them running was lost to a connection cut, or their process
// died. River's own rescuer would find them only after a minute or more
// (it looks every 30 s, and RescueStuckJobsAfter cannot go below River's
// JobTimeout); this one finds them about one delivery job timeout after
// they were fetched.
type RescueArgs struct{}

func (RescueArgs) Kind() string { return "webhook_rescue" }

const (
	// rescueInterval is how often the leader looks for stranded jobs.
	rescueInterval = 5 * time.Second
	// rescueSlack is the time past a delivery job's timeout before it
	// counts as stranded: a live worker's run has been cancelled by then,
	// and River has had time to record how it ended.
	rescueSlack = 5 * time.Second
)

// RescueWorker works RescueArgs.
type RescueWorker struct {
	river.WorkerDefaults[RescueArgs]
	store      *db.Store
	log        *slog.Logger
	stuckAfter time.Duration
}

func (w *RescueWorker) Work(ctx context.Context, _ *river.Job[RescueArgs]) error {
	ids, err := w.store.DeliveryJobsRescue(ctx, w.stuckAfter)
	if err != nil {
		return fmt.Errorf("rescuing delivery jobs: %w", err)
	}
	if len(ids) > 0 {
		w.log.WarnContext(ctx, "rescued stranded delivery jobs", "jobs", len(ids), "job_ids", ids, "running_longer_than", w.stuckAfter)
	}
	return nil
}

// Timeout keeps a run short: it is one UPDATE, and the next comes soon.
func (w *RescueWorker) Timeout(*river.Job[RescueArgs]) time.Duration { return rescueInterval * 2 }
