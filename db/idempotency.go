package db

import (
	"context"
	"fmt"
)

// idempotencyPruneBatch bounds each delete so pruning never holds long locks.
const idempotencyPruneBatch = 1000

// IdempotencyKeyDeleteExpired deletes expired keys, batch by batch, and
// returns how many went.
func (s *Store) IdempotencyKeyDeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1))`, idempotencyPruneBatch)
		if err != nil {
			return total, fmt.Errorf("deleting expired idempotency keys: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < idempotencyPruneBatch {
			return total, nil
		}
	}
}
