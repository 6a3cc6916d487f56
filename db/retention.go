package db

import (
	"context"
	"fmt"
	"time"
)

// LedgerPruneParams bound one retention run.
type LedgerPruneParams struct {
	Before time.Time // rows older than this go
	Batch  int       // rows per DELETE statement
	Until  time.Time // no batch starts after this; the next run carries on
}

// LedgerPruneResult counts what one run deleted. Done is false when the run
// stopped at Until with old rows left.
type LedgerPruneResult struct {
	Attempts   int64
	Deliveries int64
	Done       bool
}

// LedgerPrune deletes, batch by batch, webhook_delivery_attempts rows
// created before params.Before, then SUCCEEDED webhook_deliveries rows
// delivered before it. It keeps every event (merchants list them all) and
// every PENDING, PROCESSING or FAILED delivery (operators replay failures;
// the attempts of an old failure go, its summary columns stay).
//
// Each batch is one short statement in its own transaction, walking an index
// oldest first; rows another transaction holds are skipped, never waited
// for, and picked up by a later run.
func (s *Store) LedgerPrune(ctx context.Context, params LedgerPruneParams) (LedgerPruneResult, error) {
	var res LedgerPruneResult
	steps := []struct {
		what  string
		query string
		count *int64
	}{
		{"delivery attempts", `DELETE FROM webhook_delivery_attempts WHERE id IN (
			SELECT id FROM webhook_delivery_attempts WHERE created_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, &res.Attempts},
		{"delivered deliveries", `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE status = 'SUCCEEDED' AND delivered_at < $1
			ORDER BY delivered_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, &res.Deliveries},
	}
	for _, step := range steps {
		for {
			if !time.Now().Before(params.Until) {
				return res, nil
			}
			tag, err := s.Pool.Exec(ctx, step.query, params.Before, params.Batch)
			if err != nil {
				return res, fmt.Errorf("pruning %s: %w", step.what, err)
			}
			*step.count += tag.RowsAffected()
			if tag.RowsAffected() < int64(params.Batch) {
				break
			}
		}
	}
	res.Done = true
	return res, nil
}
