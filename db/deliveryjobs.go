package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Delivery jobs in River's river_job table: the two moves River has no API
// for, each one statement on delivery jobs only.

// rescuedError is what a rescued job's River errors show.
const rescuedError = "stranded running: no process was working it (its fetch or its process was lost); rescued by the webhook rescue"

// DeliveryJobsRescue makes every delivery job that has been `running` for
// longer than stuckAfter available again at once, and returns their ids. A
// job is stranded there when the answer to the fetch that marked it running
// was lost (a connection cut) or its process died; River's own rescuer
// checks only every 30 s and with a floor of a minute. The caller passes
// more than a delivery job's timeout, by which time a live worker has given
// the job up: a rescued job's new run finds the ledger as the last run left
// it (SUCCEEDED: nothing is sent again; PROCESSING: the attempt is made
// again).
func (s *Store) DeliveryJobsRescue(ctx context.Context, stuckAfter time.Duration) ([]int64, error) {
	rows, err := s.Pool.Query(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now(),
			errors = array_append(errors, jsonb_build_object('at', now(), 'attempt', attempt, 'error', $3::text, 'trace', ''))
		WHERE id IN (SELECT id FROM river_job
			WHERE state = 'running' AND kind = $1 AND attempted_at < now() - $2 * interval '1 millisecond'
			ORDER BY id LIMIT 1000
			FOR UPDATE SKIP LOCKED)
		RETURNING id`, DeliveryArgs{}.Kind(), stuckAfter.Milliseconds(), rescuedError)
	if err != nil {
		return nil, fmt.Errorf("rescuing stranded delivery jobs: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("rescuing stranded delivery jobs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rescuing stranded delivery jobs: %w", err)
	}
	return ids, nil
}

// DeliveryJobsWake makes the given delivery jobs available now if they are
// waiting (snoozed: available or scheduled for later), and returns the ids
// it moved. Jobs that ran meanwhile, or are running, are left alone.
func (s *Store) DeliveryJobsWake(ctx context.Context, ids []int64) ([]int64, error) {
	rows, err := s.Pool.Query(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE id = ANY($1) AND kind = $2 AND state IN ('available', 'scheduled') AND scheduled_at > now()
		RETURNING id`, ids, DeliveryArgs{}.Kind())
	if err != nil {
		return nil, fmt.Errorf("waking %d delivery jobs: %w", len(ids), err)
	}
	moved, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("waking %d delivery jobs: %w", len(ids), err)
	}
	return moved, nil
}
