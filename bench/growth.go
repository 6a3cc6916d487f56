package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Growth mode (-growth N): one database, grown once, gets N delivered
// webhook_deliveries rows (and their N events) and 3N
// webhook_delivery_attempts rows spread over the last 30 days, as a ledger
// months old would hold. Scenario 1 then alternates its rounds between a
// service on an empty database and a service on the grown one (the same
// binary, the same merchants), scenario 2 measures commit→receipt on both,
// and at the end the bench records the plans of the sweep and of the
// merchant list queries at both sizes, and the retention of the oldest day
// (growth.go's measureGrowth).

// ledgerTables are the tables the fill writes.
var ledgerTables = []string{"events", "webhook_deliveries", "webhook_delivery_attempts"}

type growthResult struct {
	Deliveries int       `json:"deliveries"`
	Attempts   int       `json:"attempts"`
	Events     int       `json:"events"`
	Fill       fillRun   `json:"fill"`
	Empty      *ledger   `json:"empty"` // scenario 1's empty database, at the end
	Grown      *ledger   `json:"grown"`
	Retention  *pruneRun `json:"retention_day,omitempty"`
}

// fillRun is how the ledger was filled, and how long each step took.
type fillRun struct {
	S           float64 `json:"s"`
	InsertS     float64 `json:"insert_s"`
	IndexS      float64 `json:"index_s"`
	VacuumS     float64 `json:"vacuum_analyze_s"`
	CheckpointS float64 `json:"checkpoint_s"`
	// Indexes are the secondary indexes dropped for the fill and recreated
	// after it from their saved definitions.
	Indexes []string `json:"indexes_rebuilt"`
}

// ledger is one database's ledger: its size and its plans.
type ledger struct {
	Deliveries int64      `json:"deliveries"`
	Attempts   int64      `json:"attempts"`
	Size       ledgerSize `json:"size"`
	Plans      []plan     `json:"plans"`
}

type ledgerSize struct {
	DeliveriesMiB float64 `json:"deliveries_mib"` // with indexes and TOAST
	AttemptsMiB   float64 `json:"attempts_mib"`
	EventsMiB     float64 `json:"events_mib"`
	// The tables alone (heap, TOAST, free space and visibility maps); the
	// rest is indexes.
	DeliveriesTableMiB float64 `json:"deliveries_table_mib"`
	AttemptsTableMiB   float64 `json:"attempts_table_mib"`
}

func (s ledgerSize) String() string {
	return fmt.Sprintf("deliveries %.0f MiB (table %.0f), attempts %.0f MiB (table %.0f), events %.0f MiB",
		s.DeliveriesMiB, s.DeliveriesTableMiB, s.AttemptsMiB, s.AttemptsTableMiB, s.EventsMiB)
}

// plan is EXPLAIN (ANALYZE, BUFFERS) of one statement the service runs.
type plan struct {
	Name string  `json:"name"`
	SQL  string  `json:"sql"`
	MS   float64 `json:"execution_ms"`
	// Buffers is the top node's shared buffers hit + read: the pages the
	// statement touched.
	Buffers int64 `json:"buffers"`
	// Scans are the plan's scan nodes ("Index Scan using x on t").
	Scans     []string `json:"scans"`
	IndexOnly bool     `json:"index_only"`
	Lines     []string `json:"plan"`
}

// pruneRun is the retention of the grown ledger's oldest day.
type pruneRun struct {
	Before     string  `json:"before"` // rows older than this went
	Attempts   int64   `json:"attempts"`
	Deliveries int64   `json:"deliveries"`
	S          float64 `json:"s"`
	RowsPerS   float64 `json:"rows_per_s"`
	// Statements are the DELETEs run, with their mean and longest time:
	// how long each held its row locks.
	Statements      int     `json:"statements"`
	StatementMeanMS float64 `json:"statement_mean_ms"`
	StatementMaxMS  float64 `json:"statement_max_ms"`
	// Traffic is commit→receipt of payments created at 200/s through the
	// API of a service on the grown database for 15 s before the prune;
	// During, the same while the prune ran. WAL is the server's, in both.
	Traffic   latencyRun `json:"latency_before"`
	During    latencyRun `json:"latency_during"`
	WALBefore walRate    `json:"wal_before"`
	WALDuring walRate    `json:"wal_during"`
	// Sizes before, right after, after VACUUM, and after another day's
	// worth of rows was inserted (normal inserts, every index in place).
	SizeBefore   ledgerSize `json:"size_before"`
	SizeAfter    ledgerSize `json:"size_after_prune"`
	SizeVacuumed ledgerSize `json:"size_after_vacuum"`
	SizeRefilled ledgerSize `json:"size_after_new_day"`
	VacuumS      float64    `json:"vacuum_s"`
	// Vacuums are the two VACUUMs after the prune: by table, the index
	// pages each deleted and found reusable.
	Vacuums       []map[string]indexPages `json:"vacuums"`
	NewDayRows    int                     `json:"new_day_deliveries"`
	NewDayInsertS float64                 `json:"new_day_insert_s"`
}

// grownLedger is the database growth mode fills once and every scenario reuses.
type grownLedger struct {
	url   string
	ms    []*merchant // scenario 1's
	eps   []*endpoint
	quiet *merchant // in the filled ledger, no row in the newer half
}

// ids are the merchants the fill spreads its rows over, quiet last.
func (g *grownLedger) ids() []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(g.ms)+1)
	for _, m := range g.ms {
		ids = append(ids, m.ID)
	}
	return append(ids, g.quiet.ID)
}

// grown makes (once) the grown database: throughputMerchants merchants,
// like scenario 1's empty database, and the filled ledger.
func (b *bench) grown(ctx context.Context, res *growthResult) (*grownLedger, error) {
	if b.grownDB != nil {
		return b.grownDB, nil
	}
	dbURL, err := b.pg.database(ctx, "grown")
	if err != nil {
		return nil, err
	}
	g := &grownLedger{url: dbURL}
	for i := range throughputMerchants {
		name := fmt.Sprintf("throughput-%d", i)
		ep := b.rcv.endpoint("grown-"+name, answerOK)
		m, err := b.createMerchant(ctx, dbURL, name, ep.url)
		if err != nil {
			return nil, err
		}
		ep.setSecret(m.WebhookSecret)
		g.ms, g.eps = append(g.ms, m), append(g.eps, ep)
	}
	// A merchant who left halfway through the 30 days: no traffic since,
	// so its list is the list plans' worst case.
	if g.quiet, err = b.createMerchant(ctx, dbURL, "quiet", b.rcv.endpoint("grown-quiet", answerOK).url); err != nil {
		return nil, err
	}
	ids := g.ids()
	n := b.opts.growth
	res.Deliveries, res.Attempts, res.Events = n, 3*n, n
	if res.Fill, err = fillLedger(ctx, dbURL, ids, n, fillChunk, b.logf); err != nil {
		return nil, err
	}
	b.logf("growth: %d deliveries, %d attempts, %d events in %.0f s (insert %.0f s, indexes %.0f s, vacuum analyze %.0f s, checkpoint %.0f s)",
		n, 3*n, n, res.Fill.S, res.Fill.InsertS, res.Fill.IndexS, res.Fill.VacuumS, res.Fill.CheckpointS)
	b.grownDB = g
	return g, nil
}

const (
	fillChunk   = 250_000 // deliveries per INSERT statement (3× as many attempts)
	fillWorkers = 2       // connections filling at once: the machine's cores
	fillDays    = 30
)

// fillLedger fills the ledger of dbURL with n delivered deliveries spread
// over the last 30 days, oldest first, their events and three attempts each,
// the way a bulk load is done: the three tables' secondary indexes dropped
// (their definitions saved), triggers and foreign key checks off
// (session_replication_role = replica: the bench's Postgres is its own),
// chunked INSERT … SELECT on fillWorkers connections; then the same indexes
// rebuilt from the saved definitions with parallel workers and a large
// maintenance_work_mem, VACUUM ANALYZE, and a CHECKPOINT (the fill's WAL
// would otherwise set one off during the measurement, and every page first
// touched after it costs a full-page image: a cost of the fill, not of the
// ledger's size).
func fillLedger(ctx context.Context, dbURL string, merchants []uuid.UUID, n, chunk int, logf func(string, ...any)) (fillRun, error) {
	var run fillRun
	start := time.Now()
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return run, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	before, err := ledgerIndexes(ctx, conn)
	if err != nil {
		return run, err
	}
	var endpoints []uuid.UUID
	for _, m := range merchants {
		var ep uuid.UUID
		if err := conn.QueryRow(ctx, `SELECT id FROM webhook_endpoints WHERE merchant_id = $1 AND is_default AND deleted_at IS NULL`, m).
			Scan(&ep); err != nil {
			return run, fmt.Errorf("reading merchant %s's endpoint: %w", m, err)
		}
		endpoints = append(endpoints, ep)
	}
	var dropped []index
	for _, ix := range before {
		if ix.constraint {
			continue // primary keys stay: the fill appends at their right edge
		}
		if _, err := conn.Exec(ctx, "DROP INDEX "+pgx.Identifier{ix.name}.Sanitize()); err != nil {
			return run, err
		}
		dropped = append(dropped, ix)
		run.Indexes = append(run.Indexes, ix.name)
	}

	t0 := time.Now()
	chunks := make(chan func(context.Context, *pgx.Conn) error)
	errs := make([]error, fillWorkers)
	var wg sync.WaitGroup
	for w := range fillWorkers {
		wg.Go(func() {
			c, err := connect(ctx, dbURL)
			if err != nil {
				errs[w] = err
			} else {
				defer c.Close(context.WithoutCancel(ctx))
				_, errs[w] = c.Exec(ctx, `SET session_replication_role = replica; SET synchronous_commit = off`)
			}
			for chunk := range chunks {
				if errs[w] == nil {
					errs[w] = chunk(ctx, c)
				}
			}
		})
	}
	now := time.Now()
	for lo := 0; lo < n && ctx.Err() == nil; lo += chunk {
		hi := min(lo+chunk, n)
		if lo%(4*chunk) == 0 {
			logf("growth: filling rows %d to %d of %d", lo, min(lo+4*chunk, n), n)
		}
		chunks <- func(ctx context.Context, c *pgx.Conn) error {
			return insertLedgerRows(ctx, c, merchants, endpoints, now, n, lo, hi)
		}
	}
	close(chunks)
	wg.Wait()
	if err := cmpErr(append(errs, ctx.Err())...); err != nil {
		return run, fmt.Errorf("filling the ledger: %w", err)
	}
	run.InsertS = round(time.Since(t0).Seconds(), 1)

	t0 = time.Now()
	logf("growth: rebuilding %d indexes", len(dropped))
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 2`); err != nil {
		return run, err
	}
	for _, ix := range dropped {
		if _, err := conn.Exec(ctx, ix.def); err != nil {
			return run, fmt.Errorf("rebuilding %s: %w", ix.name, err)
		}
	}
	after, err := ledgerIndexes(ctx, conn)
	if err != nil {
		return run, err
	}
	if !slices.Equal(before, after) {
		return run, fmt.Errorf("the rebuilt indexes differ from the migrated ones:\nbefore: %v\nafter:  %v", before, after)
	}
	run.IndexS = round(time.Since(t0).Seconds(), 1)

	t0 = time.Now()
	logf("growth: VACUUM ANALYZE")
	for _, table := range ledgerTables {
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			return run, err
		}
	}
	run.VacuumS = round(time.Since(t0).Seconds(), 1)
	t0 = time.Now()
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return run, err
	}
	run.CheckpointS = round(time.Since(t0).Seconds(), 1)
	run.S = round(time.Since(start).Seconds(), 1)
	return run, nil
}

// insertLedgerRows inserts rows lo..hi-1 of an n-row ledger ending at now:
// for each, one event, one delivered delivery (to its merchant's default
// endpoint) and three attempts (two HTTP 500s, then a 200), created_at
// spread evenly over fillDays, merchants taking turns; the last merchant
// (given at least two) gets no row in the newer half. Ids are ordered by time like the service's
// (UUIDv7: 48 bits of Unix milliseconds first, then a version nibble; here
// the row number after it, so ids are unique without randomness), so the
// indexes grow at their right edge as in production.
func insertLedgerRows(ctx context.Context, c *pgx.Conn, merchants, endpoints []uuid.UUID, now time.Time, n, lo, hi int) error {
	const rows = `WITH g AS (
			SELECT i, $1::timestamptz - ($2::float8 * (1 - i::float8 / $3::bigint)) * interval '1 second' AS at,
				-- The last merchant stopped halfway through (a merchant who
				-- left).
				1 + i % (cardinality($6::uuid[]) - CASE WHEN i >= $3::bigint / 2 AND cardinality($6::uuid[]) > 1 THEN 1 ELSE 0 END) AS m
			FROM generate_series($4::bigint, $5::bigint - 1) AS i),
		r AS (
			SELECT i, at, ($6::uuid[])[m] AS merchant_id, ($7::uuid[])[m] AS endpoint_id,
				(lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7000' || '8' || lpad(to_hex(i), 15, '0'))::uuid AS event_id,
				(lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7001' || '8' || lpad(to_hex(i), 15, '0'))::uuid AS id
			FROM g)`
	const payload = `'{"id":"growth","event":"payment.succeeded","data":{}}'`
	args := []any{now, float64(fillDays * 24 * 3600), n, lo, hi, merchants, endpoints}
	for _, q := range []string{
		`INSERT INTO events (id, merchant_id, type, payload, created_at)
			SELECT event_id, merchant_id, 'payment.succeeded', ` + payload + `, at FROM r`,
		`INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, attempts,
				cycle_attempts, last_attempt_at, next_retry_at, http_status_code, delivered_at, endpoint_id, created_at, updated_at)
			SELECT id, merchant_id, event_id, 'payment.succeeded', ` + payload + `,
				'SUCCEEDED', 3, 3, at, NULL, 200, at, endpoint_id, at, at
			FROM r`,
		`INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, error, response_body, created_at)
			SELECT r.id, a, CASE WHEN a < 3 THEN 500 ELSE 200 END, 12, CASE WHEN a < 3 THEN 'HTTP 500' END, 'ok', r.at
			FROM r CROSS JOIN LATERAL generate_series(1, 3) AS a`,
	} {
		if _, err := c.Exec(ctx, rows+q, args...); err != nil {
			return fmt.Errorf("rows %d to %d: %w", lo, hi, err)
		}
	}
	return nil
}

// index is one index of the ledger tables, as pg_indexes defines it.
type index struct {
	name, def  string
	constraint bool // backs a primary key or unique constraint
}

// ledgerIndexes lists the ledger tables' indexes by name.
func ledgerIndexes(ctx context.Context, conn *pgx.Conn) ([]index, error) {
	rows, err := conn.Query(ctx, `SELECT i.indexname, i.indexdef,
			EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)
		FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename = ANY($1) ORDER BY i.indexname`, ledgerTables)
	if err != nil {
		return nil, fmt.Errorf("listing the ledger's indexes: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var ix index
		err := row.Scan(&ix.name, &ix.def, &ix.constraint)
		return ix, err
	})
}

// sizeOf reads the ledger tables' sizes, indexes and TOAST included.
func sizeOf(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (ledgerSize, error) {
	var d, a, e, dt, at int64
	err := q.QueryRow(ctx, `SELECT pg_total_relation_size('webhook_deliveries'), pg_total_relation_size('webhook_delivery_attempts'),
		pg_total_relation_size('events'), pg_table_size('webhook_deliveries'), pg_table_size('webhook_delivery_attempts')`).
		Scan(&d, &a, &e, &dt, &at)
	return ledgerSize{DeliveriesMiB: mib(d), AttemptsMiB: mib(a), EventsMiB: mib(e), DeliveriesTableMiB: mib(dt), AttemptsTableMiB: mib(at)}, err
}

// scanNodes picks the scan nodes out of a plan's lines; indexOnly is
// whether every one of them is an index-only scan.
func scanNodes(lines []string) (scans []string, indexOnly bool) {
	indexOnly = true
	for _, l := range lines {
		l = strings.TrimLeft(strings.TrimSpace(l), "-> ")
		if name, _, ok := strings.Cut(l, "  ("); ok && strings.Contains(name, "Scan") {
			scans = append(scans, name)
			indexOnly = indexOnly && strings.HasPrefix(name, "Index Only Scan")
		}
	}
	return scans, indexOnly && len(scans) > 0
}
