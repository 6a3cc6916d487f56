package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/boohpay/boohpay/db"
)

// Growth mode (-growth N): before scenario 1 measures anything, its database
// gets N delivered webhook_deliveries rows (and their events) and 3N
// webhook_delivery_attempts rows, spread over the last 30 days, then VACUUM
// ANALYZE, as a ledger months old would be. Compare a run with -growth N
// against one without, back to back: throughput, and the sweep's plan.

type growthResult struct {
	Deliveries int     `json:"deliveries"`
	Attempts   int     `json:"attempts"`
	FillS      float64 `json:"fill_s"`
	// SweepPlan is EXPLAIN (ANALYZE, BUFFERS) of the sweep's select after
	// scenario 1, with the ledger full.
	SweepPlan []string `json:"sweep_plan"`
	SweepMS   float64  `json:"sweep_ms"`
	// TableMiB is the ledger's size: deliveries, attempts, with indexes.
	DeliveriesMiB float64 `json:"deliveries_mib"`
	AttemptsMiB   float64 `json:"attempts_mib"`
	// Retention of the oldest day (a thirtieth of the fill) by the
	// service's own batched deletes (db.Store.LedgerPrune, 1 000 rows per
	// statement), while nothing else runs.
	RetentionDay retentionRun `json:"retention_day"`
}

type retentionRun struct {
	Attempts   int64   `json:"attempts"`
	Deliveries int64   `json:"deliveries"`
	S          float64 `json:"s"`
	RowsPerS   float64 `json:"rows_per_s"`
	// BatchMS is one DELETE statement's mean time: how long its row locks
	// are held.
	BatchMS float64 `json:"batch_ms"`
	// The ledger's size after, and dead rows left for autovacuum: the
	// space is reused by new rows, not returned to the disk.
	DeliveriesMiBAfter float64 `json:"deliveries_mib_after"`
	AttemptsMiBAfter   float64 `json:"attempts_mib_after"`
}

// grow fills the ledger of dbURL with n delivered deliveries spread over ms.
func (b *bench) grow(ctx context.Context, dbURL string, ms []*merchant, n int) (*growthResult, error) {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID.String()
	}
	// Ids ordered by time like the service's (UUIDv7: 48 bits of Unix
	// milliseconds first), so the ledger's indexes grow as they do in
	// production, at their right edge; oldest rows first.
	if _, err := conn.Exec(ctx, `CREATE FUNCTION pg_temp.v7(at timestamptz) RETURNS uuid LANGUAGE sql AS
		$$ SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || substr(md5(random()::text), 1, 20))::uuid $$`); err != nil {
		return nil, err
	}
	start := time.Now()
	const chunk = 500_000
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		b.logf("growth: filling rows %d to %d of %d", done, done+k, n)
		// One event, one delivered delivery and three attempts per row,
		// created_at spread evenly over 30 days.
		if _, err := conn.Exec(ctx, `
			WITH src AS (
				SELECT pg_temp.v7(at) AS event_id, pg_temp.v7(at) AS id, merchant_id, at FROM (
					SELECT ($1::uuid[])[1 + i % cardinality($1::uuid[])] AS merchant_id,
						now() - interval '30 days' * (1 - i::float8 / $3) AS at
					FROM generate_series($2::bigint, $2::bigint + $4 - 1) AS i) AS g),
			ev AS (INSERT INTO events (id, merchant_id, type, payload, created_at)
				SELECT event_id, merchant_id, 'payment.succeeded', '{"id":"growth","event":"payment.succeeded","data":{}}', at FROM src),
			d AS (INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, attempts,
					cycle_attempts, last_attempt_at, next_retry_at, http_status_code, delivered_at, endpoint_id, created_at, updated_at)
				SELECT s.id, s.merchant_id, s.event_id, 'payment.succeeded', '{"id":"growth","event":"payment.succeeded","data":{}}',
					'SUCCEEDED', 3, 3, s.at, NULL, 200, s.at,
					(SELECT e.id FROM webhook_endpoints e WHERE e.merchant_id = s.merchant_id AND e.is_default), s.at, s.at
				FROM src s
				RETURNING id, created_at)
			INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, error, response_body, created_at)
			SELECT d.id, a, CASE WHEN a < 3 THEN 500 ELSE 200 END, 12,
				CASE WHEN a < 3 THEN 'HTTP 500' END, 'ok', d.created_at
			FROM d, generate_series(1, 3) AS a`, ids, done, n, k); err != nil {
			return nil, fmt.Errorf("filling the ledger: %w", err)
		}
	}
	for _, table := range []string{"events", "webhook_deliveries", "webhook_delivery_attempts"} {
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			return nil, err
		}
	}
	// The fill's WAL would otherwise trigger a checkpoint during the
	// measurement, and every page first touched after it costs a full-page
	// image: a cost of the fill, not of the ledger's size.
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, err
	}
	return &growthResult{Deliveries: n, Attempts: 3 * n, FillS: round(time.Since(start).Seconds(), 1)}, nil
}

// measureLedger adds the sweep's plan and the ledger's size to g.
func (b *bench) measureLedger(ctx context.Context, dbURL string, g *growthResult) error {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+db.DeliverySweepSQL, 50)
	if err != nil {
		return fmt.Errorf("explaining the sweep: %w", err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		g.SweepPlan = append(g.SweepPlan, line)
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Execution Time: "); ok {
			_, _ = fmt.Sscanf(v, "%f ms", &g.SweepMS)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var d, a int64
	if err := tx.QueryRow(ctx, `SELECT pg_total_relation_size('webhook_deliveries'), pg_total_relation_size('webhook_delivery_attempts')`).
		Scan(&d, &a); err != nil {
		return err
	}
	g.DeliveriesMiB, g.AttemptsMiB = mib(d), mib(a)
	if err := tx.Rollback(ctx); err != nil {
		return err
	}

	pool, err := db.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := db.NewStore(pool)
	if err != nil {
		return err
	}
	const batch = 1000
	start := time.Now()
	r, err := store.LedgerPrune(ctx, db.LedgerPruneParams{Before: time.Now().Add(-29 * 24 * time.Hour), Batch: batch,
		Until: time.Now().Add(10 * time.Minute)})
	if err != nil {
		return fmt.Errorf("pruning a day: %w", err)
	}
	took := time.Since(start)
	rr := &g.RetentionDay
	rr.Attempts, rr.Deliveries, rr.S = r.Attempts, r.Deliveries, round(took.Seconds(), 2)
	if rows := r.Attempts + r.Deliveries; rows > 0 {
		rr.RowsPerS = round(float64(rows)/took.Seconds(), 0)
		batches := (r.Attempts+batch-1)/batch + (r.Deliveries+batch-1)/batch
		rr.BatchMS = round(float64(took.Milliseconds())/float64(batches), 1)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('webhook_deliveries'), pg_total_relation_size('webhook_delivery_attempts')`).
		Scan(&d, &a); err != nil {
		return err
	}
	rr.DeliveriesMiBAfter, rr.AttemptsMiBAfter = mib(d), mib(a)
	return nil
}
