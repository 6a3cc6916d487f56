package db

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// IdempotentResponse is a stored first response, replayed for the same key and body.
type IdempotentResponse struct {
	StatusCode int
	Body       []byte
}

var (
	errIdempotencyInProgress = &Error{Code: EIdempotency, Message: "a request with this Idempotency-Key is still in progress; retry later"}
	errIdempotencyMismatch   = &Error{Code: EIdempotency, Message: "this Idempotency-Key was already used with a different request"}
)

// IdempotencyKeyBeginTx claims key for the rest of tx. It returns the stored
// response when the same request was already answered, an EIdempotency
// error when the key was used for a different request or is held by a
// concurrent request (we answer at once rather than wait), and nil, nil when
// the caller should go ahead and then save its response with
// IdempotencyKeySaveTx in the same tx — so the response is stored if and
// only if the objects it describes were committed.
func (s *Store) IdempotencyKeyBeginTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, key, method, path string, requestHash []byte) (*IdempotentResponse, error) {
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1::text || '/' || $2, 74062))`,
		merchantID, key).Scan(&locked); err != nil {
		return nil, fmt.Errorf("locking idempotency key: %w", err)
	}
	if !locked {
		return nil, errIdempotencyInProgress
	}
	var storedMethod, storedPath string
	var storedHash []byte
	var resp IdempotentResponse
	err := tx.QueryRow(ctx, `SELECT request_method, request_path, request_hash, response_code, response_body
		FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND expires_at > now()`, merchantID, key).
		Scan(&storedMethod, &storedPath, &storedHash, &resp.StatusCode, &resp.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading idempotency key: %w", err)
	}
	if storedMethod != method || storedPath != path || subtle.ConstantTimeCompare(storedHash, requestHash) != 1 {
		return nil, errIdempotencyMismatch
	}
	return &resp, nil
}

// IdempotencyKeySaveTx stores the response for a key claimed by
// IdempotencyKeyBeginTx, replacing an expired record of the same key.
func (s *Store) IdempotencyKeySaveTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, key, method, path string, requestHash []byte, resp IdempotentResponse) error {
	_, err := tx.Exec(ctx, `INSERT INTO idempotency_keys
			(merchant_id, key, request_method, request_path, request_hash, response_code, response_body, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now() + interval '24 hours')
		ON CONFLICT (merchant_id, key) DO UPDATE SET request_method = EXCLUDED.request_method,
			request_path = EXCLUDED.request_path, request_hash = EXCLUDED.request_hash,
			response_code = EXCLUDED.response_code, response_body = EXCLUDED.response_body,
			created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
		WHERE idempotency_keys.expires_at <= now()`,
		merchantID, key, method, path, requestHash, resp.StatusCode, resp.Body)
	if err != nil {
		return fmt.Errorf("saving idempotency key: %w", err)
	}
	return nil
}

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
