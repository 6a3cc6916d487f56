// Package db owns BoohPay's Postgres state: the pool, the schema migrations
// and every query, grouped one file per table. Callers get domain errors
// (see errors.go), never pgx's.
package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
)

// Store runs queries on the pool. Its River client is insert-only: it puts
// jobs into river_job inside our transactions; the workers run elsewhere.
type Store struct {
	Pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	observer Observer // told of committed status changes; see observer.go
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) (*Store, error) {
	// FetchCooldown also paces this client's insert notifications.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{FetchCooldown: DeliveryNotifyCooldown})
	if err != nil {
		return nil, fmt.Errorf("creating insert-only river client: %w", err)
	}
	return &Store{Pool: pool, river: rc}, nil
}

const (
	connectTimeoutDefault = 5 * time.Second
	MaxConnsDefault       = 20 // unless DATABASE_URL sets pool_max_conns
)

// Connect opens a pool on url and checks that the database answers.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	// pgx waits forever for a host that drops packets; bound each connect
	// unless the URL says otherwise (connect_timeout=…).
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeoutDefault
	}
	// pgx's default pool (max(4, CPUs)) is shared here by the API, up to
	// 100 delivery workers, River's fetcher and the metrics collectors;
	// with 4 connections they queue for each other (docs/BENCHMARKS.md).
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = MaxConnsDefault
	}
	ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	return pool, nil
}

// ConfigurePool sets what every pool on the service's database needs:
// google/uuid's UUIDs encoded and decoded as Postgres uuids directly
// (pgxuuid). pgx would otherwise pass each through its driver.Valuer string
// form and parse it back: about 4% of a delivery's CPU in the service, for
// the id arrays of the delivery worker's batched statements.
func ConfigurePool(cfg *pgxpool.Config) {
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxuuid.Register(conn.TypeMap())
		return nil
	}
}

// InTx runs fn in one transaction, committing when it returns nil. Once the
// commit succeeds, the payment and payout changes made in it are reported to
// the Store's Observer (see observer.go).
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	otx := &observedTx{}
	if err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		otx.Tx = tx
		return fn(otx)
	}); err != nil {
		return err
	}
	if s.observer != nil {
		for _, note := range otx.notes {
			note(s.observer)
		}
	}
	return nil
}

// InTxRetrying runs fn in one transaction like InTx, and while the database
// cannot serve (Unavailable) runs it again, backing off, until ctx ends, as
// long as nothing can have committed: a failure before COMMIT was sent. A
// failed COMMIT is returned as is, since it may have committed. For writes
// that must not be lost to a short outage once their cause has happened
// (a webhook attempt that reached the merchant), not for requests, which
// answer 503 and let the client retry.
func (s *Store) InTxRetrying(ctx context.Context, fn func(tx pgx.Tx) error) error {
	backoff := retryBackoffMin
	for {
		err := s.tryTx(ctx, fn)
		var committing *commitError
		if err == nil || errors.As(err, &committing) || !Unavailable(err) {
			return err
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

const (
	retryBackoffMin = 50 * time.Millisecond
	retryBackoffMax = time.Second
)

// commitError is a failed COMMIT, whose outcome is unknown.
type commitError struct{ err error }

func (e *commitError) Error() string { return "committing: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

func (s *Store) tryTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &commitError{err}
	}
	return nil
}
