package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/boohpay/boohpay/db"
)

// The ledger's plans and retention, measured at the end of a growth run
// with the service's own code: the merchant list queries are recorded as
// db.Store sends them (a pgx tracer on the bench's pool), then explained
// with their own arguments, so the bench keeps no copy of their SQL.

// statementRecorder is a pgx tracer that keeps every statement sent, with
// its arguments and how long it took.
type statementRecorder struct {
	mu    sync.Mutex
	stmts []*statement
}

type statement struct {
	sql   string
	args  []any
	start time.Time
	took  time.Duration
}

type statementKey struct{}

func (r *statementRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s := &statement{sql: d.SQL, args: d.Args, start: time.Now()}
	r.mu.Lock()
	r.stmts = append(r.stmts, s)
	r.mu.Unlock()
	return context.WithValue(ctx, statementKey{}, s)
}

func (r *statementRecorder) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if s, ok := ctx.Value(statementKey{}).(*statement); ok {
		r.mu.Lock()
		s.took = time.Since(s.start)
		r.mu.Unlock()
	}
}

// take returns the statements recorded since the last take.
func (r *statementRecorder) take() []*statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stmts
	r.stmts = nil
	return s
}

// recordingStore is a db.Store whose statements rec records.
func recordingStore(ctx context.Context, dbURL string, rec *statementRecorder) (*db.Store, func(), error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, nil, err
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := db.NewStore(pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store, pool.Close, nil
}

// ledgerOf reads dbURL's ledger: its size, and the plans of the sweep's
// select and of merchant's list queries, and of quiet's lists (in the grown
// ledger, a merchant with no delivery in the last 15 days).
func ledgerOf(ctx context.Context, dbURL string, merchant, quiet uuid.UUID) (*ledger, error) {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	l := &ledger{}
	if l.Size, err = sizeOf(ctx, conn); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM webhook_delivery_attempts)`).
		Scan(&l.Deliveries, &l.Attempts); err != nil {
		return nil, err
	}

	// The sweep's select locks what it finds: explain it in a transaction
	// rolled back. 50 is WEBHOOK_SWEEP_BATCH's default. Its index is
	// partial, but every delivery enters it (PENDING, then PROCESSING) and
	// leaves a dead entry until VACUUM: explain it again after one.
	sweep := func(name string) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		p, err := explain(ctx, tx, name, db.DeliverySweepSQL, []any{50})
		_ = tx.Rollback(ctx)
		l.Plans = append(l.Plans, p)
		return err
	}
	if err := sweep("sweep select"); err != nil {
		return nil, err
	}
	// A scan marks the index entries of rows dead to everyone as such
	// (kill_prior_tuple), so the next one skips their heap visits but
	// still reads their index pages: what the service's periodic sweep
	// pays between vacuums.
	if err := sweep("sweep select, again"); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "VACUUM webhook_deliveries"); err != nil {
		return nil, err
	}
	if err := sweep("sweep select, after VACUUM"); err != nil {
		return nil, err
	}

	// A delivery from the middle of the grown ledger (in an empty one, the
	// oldest), its event, and the merchant's endpoint, to filter on.
	var delivery, event, endpoint uuid.UUID
	if err := conn.QueryRow(ctx, `SELECT id, event_id, endpoint_id FROM webhook_deliveries
		WHERE merchant_id = $1 AND created_at >= now() - interval '15 days' ORDER BY created_at LIMIT 1`, merchant).
		Scan(&delivery, &event, &endpoint); err != nil {
		return nil, fmt.Errorf("picking a delivery to explain: %w", err)
	}
	rec := &statementRecorder{}
	store, closeStore, err := recordingStore(ctx, dbURL, rec)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	page := func(p db.ListParams) func() error {
		p.Limit = 10 // the API's default page
		return func() error { _, _, err := store.DeliveryList(ctx, merchant, p); return err }
	}
	quietPage := func() error { _, _, err := store.DeliveryList(ctx, quiet, db.ListParams{Limit: 10}); return err }
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"deliveries list", page(db.ListParams{})},
		{"deliveries list, status=FAILED", page(db.ListParams{Filter: db.DeliveryFailed})},
		{"deliveries list, endpoint_id=", page(db.ListParams{Where: []db.ListCond{{Column: "endpoint_id", Value: endpoint}}})},
		{"deliveries list, event_id=", page(db.ListParams{Where: []db.ListCond{{Column: "event_id", Value: event}}})},
		{"a delivery with its attempts", func() error { _, err := store.DeliveryGet(ctx, merchant, delivery); return err }},
		{"events list", func() error { _, _, err := store.EventList(ctx, merchant, db.ListParams{Limit: 10}); return err }},
		{"deliveries list, merchant quiet for 15 days", quietPage},
		{"events list, merchant quiet for 15 days", func() error {
			_, _, err := store.EventList(ctx, quiet, db.ListParams{Limit: 10})
			return err
		}},
	} {
		rec.take()
		if err := c.call(); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		for i, s := range rec.take() {
			name := c.name
			if i > 0 {
				name += ": attempts"
			}
			p, err := explain(ctx, conn, name, s.sql, s.args)
			if err != nil {
				return nil, err
			}
			l.Plans = append(l.Plans, p)
		}
	}
	return l, nil
}

// explain runs EXPLAIN (ANALYZE, BUFFERS) of sql with args.
func explain(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, name, sql string, args []any) (plan, error) {
	p := plan{Name: name, SQL: strings.Join(strings.Fields(sql), " ")}
	rows, err := q.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		return p, fmt.Errorf("explaining %s: %w", name, err)
	}
	if p.Lines, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return p, fmt.Errorf("explaining %s: %w", name, err)
	}
	seen := false
	for _, line := range p.Lines {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Execution Time: "); ok {
			_, _ = fmt.Sscanf(v, "%f ms", &p.MS)
		}
		// The first Buffers line is the top node's, which counts its children's.
		if v, ok := strings.CutPrefix(line, "Buffers: shared "); ok && !seen {
			seen = true
			for f := range strings.FieldsSeq(v) {
				var n int64
				if _, err := fmt.Sscanf(f, "hit=%d", &n); err == nil {
					p.Buffers += n
				} else if _, err := fmt.Sscanf(f, "read=%d", &n); err == nil {
					p.Buffers += n
				}
			}
		}
	}
	p.Scans, p.IndexOnly = scanNodes(p.Lines)
	return p, nil
}

// measurePrune deletes the grown ledger's oldest day with the service's own
// db.Store.LedgerPrune (1 000 rows per statement, as the retention job
// runs it), while a service on the same database takes payments at 200/s
// and delivers their events; then VACUUMs, and inserts a new day's worth of
// rows to see whether the space is reused.
func (b *bench) measurePrune(ctx context.Context, g *grownLedger) (*pruneRun, error) {
	conn, err := connect(ctx, g.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r := &pruneRun{}
	if r.SizeBefore, err = sizeOf(ctx, conn); err != nil {
		return nil, err
	}

	ep := b.rcv.endpoint("grown-retention", answerOK)
	m, err := b.createMerchant(ctx, g.url, "retention", ep.url)
	if err != nil {
		return nil, err
	}
	ep.setSecret(m.WebhookSecret)
	svc, err := b.startService(ctx, "retention", g.url, "all", growthServiceEnv...)
	if err != nil {
		return nil, err
	}
	defer svc.stop()
	clients := []*apiClient{newAPIClient(svc.base, m.APIKey)}
	b.createAtRate(ctx, clients, nil, latencyRate, int(latencyRate*warmup.Seconds()))

	// The same traffic without the prune first, on the same service and
	// database: what the prune changes.
	w0, err := walNow(ctx, conn)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	l0 := b.createAtRate(ctx, clients, nil, latencyRate, int(latencyRate*pruneBaseline.Seconds()))
	w1, err := walNow(ctx, conn)
	if err != nil {
		return nil, err
	}
	r.WALBefore = w1.since(w0, time.Since(t0))
	if r.Traffic, err = b.deliveryLatencies(ctx, ep, l0.committed[0], 30*time.Second); err != nil {
		return nil, err
	}
	b.logf("growth: commit→receipt before the prune p50 %.1f p99 %.1f max %.1f ms over %d payments; WAL %.1f MiB/s, %.0f full-page images/s",
		r.Traffic.P50, r.Traffic.P99, r.Traffic.Max, r.Traffic.Count, r.WALBefore.MiBPerS, r.WALBefore.FPIPerS)

	rec := &statementRecorder{}
	store, closeStore, err := recordingStore(ctx, g.url, rec)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	before := time.Now().Add(-(fillDays - 1) * 24 * time.Hour)
	r.Before = before.UTC().Format(time.RFC3339)
	const batch = 1000 // the retention job's
	b.logf("growth: pruning rows older than %s while taking payments at %.0f/s", r.Before, latencyRate)

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := make(chan *load, 1)
	go func() { loaded <- b.createAtRateUntil(ctx, loadCtx, clients, nil, latencyRate, int(latencyRate*3600)) }()
	if w0, err = walNow(ctx, conn); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := store.LedgerPrune(ctx, db.LedgerPruneParams{Before: before, Batch: batch, Until: time.Now().Add(20 * time.Minute)})
	took := time.Since(start)
	if w1, err := walNow(ctx, conn); err == nil {
		r.WALDuring = w1.since(w0, took)
	}
	stopLoad()
	l := <-loaded
	if err != nil {
		return nil, fmt.Errorf("pruning a day: %w", err)
	}
	r.Attempts, r.Deliveries, r.S = res.Attempts, res.Deliveries, round(took.Seconds(), 2)
	r.RowsPerS = round(float64(res.Attempts+res.Deliveries)/took.Seconds(), 0)
	var sum, longest time.Duration
	for _, s := range rec.take() {
		if strings.HasPrefix(strings.TrimSpace(s.sql), "DELETE") {
			r.Statements++
			sum += s.took
			longest = max(longest, s.took)
		}
	}
	if r.Statements > 0 {
		r.StatementMeanMS, r.StatementMaxMS = ms(sum/time.Duration(r.Statements)), ms(longest)
	}
	if r.During, err = b.deliveryLatencies(ctx, ep, l.committed[0], 30*time.Second); err != nil {
		return nil, err
	}
	r.During.MaxLagMS, r.During.Errors = ms(l.maxLag), l.errors
	create := summarize(l.durations, 0)
	r.During.Create = &create
	b.logf("growth: pruned %d attempts + %d deliveries in %.1f s (%.0f rows/s), %d DELETEs, mean %.1f ms, max %.1f ms; meanwhile commit→receipt p50 %.1f p99 %.1f max %.1f ms over %d payments; WAL %.1f MiB/s, %.0f full-page images/s",
		r.Attempts, r.Deliveries, r.S, r.RowsPerS, r.Statements, r.StatementMeanMS, r.StatementMaxMS, r.During.P50, r.During.P99, r.During.Max, r.During.Count,
		r.WALDuring.MiBPerS, r.WALDuring.FPIPerS)
	if _, err := svc.finish(); err != nil {
		return nil, err
	}

	if r.SizeAfter, err = sizeOf(ctx, conn); err != nil {
		return nil, err
	}
	// Two VACUUMs, as autovacuum would run them over the following
	// hours: the first removes the dead rows and deletes the emptied index
	// pages, the second recycles those pages.
	t0 = time.Now()
	r.Vacuums = []map[string]indexPages{{}, {}}
	for i := range r.Vacuums {
		for _, table := range []string{"webhook_delivery_attempts", "webhook_deliveries"} {
			if r.Vacuums[i][table], err = vacuumVerbose(ctx, g.url, table); err != nil {
				return nil, err
			}
		}
		if i == 0 {
			r.VacuumS = round(time.Since(t0).Seconds(), 1)
		}
	}
	if r.SizeVacuumed, err = sizeOf(ctx, conn); err != nil {
		return nil, err
	}

	// A new day: as many rows as the day pruned, dated now, inserted with
	// every index, trigger and foreign key in place.
	ids := g.ids()
	eps := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		if err := conn.QueryRow(ctx, `SELECT id FROM webhook_endpoints WHERE merchant_id = $1 AND is_default AND deleted_at IS NULL`, id).
			Scan(&eps[i]); err != nil {
			return nil, err
		}
	}
	day := int(res.Deliveries)
	r.NewDayRows = day
	t0 = time.Now()
	// Rows numbered past the fill's, so their ids are new; spread over the
	// last 1/fillDays of a ledger of n+day rows, i.e. the last day.
	n := b.opts.growth
	for lo := n; lo < n+day; lo += fillChunk {
		if err := insertLedgerRows(ctx, conn, ids, eps, time.Now(), n+day, lo, min(lo+fillChunk, n+day)); err != nil {
			return nil, fmt.Errorf("inserting a new day: %w", err)
		}
	}
	r.NewDayInsertS = round(time.Since(t0).Seconds(), 1)
	if r.SizeRefilled, err = sizeOf(ctx, conn); err != nil {
		return nil, err
	}
	b.logf("growth: sizes before %s; after the prune %s; after VACUUM (%.0f s; index pages %v MiB) %s; after a new day (%d deliveries in %.0f s) %s",
		r.SizeBefore, r.SizeAfter, r.VacuumS, r.Vacuums, r.SizeVacuumed, day, r.NewDayInsertS, r.SizeRefilled)
	return r, nil
}

// growthServiceEnv is the environment of the services on the grown
// ledger (and, alike, the empty one): the retention job, which runs when a
// service starts, keeps 90 days, so that it does not prune the filled rows
// aging past 30 days meanwhile; the bench measures retention itself.
var growthServiceEnv = []string{"WEBHOOK_RETENTION=2160h"}

// measureGrowth records the ledger at both sizes (the sweep's and the list
// queries' plans, the sizes), then the grown ledger's retention of a day.
func (b *bench) measureGrowth(ctx context.Context) error {
	g, err := b.grown(ctx, b.growth)
	if err != nil {
		return err
	}
	if e := b.emptyDB; e != nil {
		if b.growth.Empty, err = ledgerOf(ctx, e.url, e.ms[0].ID, e.quiet.ID); err != nil {
			return fmt.Errorf("the empty ledger: %w", err)
		}
	}
	if b.growth.Grown, err = ledgerOf(ctx, g.url, g.ms[0].ID, g.quiet.ID); err != nil {
		return fmt.Errorf("the grown ledger: %w", err)
	}
	for _, l := range []*ledger{b.growth.Empty, b.growth.Grown} {
		if l == nil {
			continue
		}
		b.logf("growth: ledger of %d deliveries, %d attempts (%s)", l.Deliveries, l.Attempts, l.Size)
		for _, p := range l.Plans {
			b.logf("growth:   %-44s %7.2f ms %6d buffers  %s", p.Name, p.MS, p.Buffers, strings.Join(p.Scans, "; "))
		}
	}
	b.growth.Retention, err = b.measurePrune(ctx, g)
	return err
}

// indexPagesRE reads VACUUM VERBOSE's line about an index's pages (PostgreSQL 15).
var indexPagesRE = regexp.MustCompile(`index "[^"]+": pages: \d+ in total, (\d+) newly deleted, \d+ currently deleted, (\d+) reusable`)

// indexPages is what VACUUM VERBOSE said of a table's indexes, in MiB:
// b-tree pages it emptied and deleted, and deleted pages it found safe to
// recycle (a page deleted by one VACUUM is recycled by a later one, once no
// transaction can still see it). Recycled pages take new entries; neither
// is returned to the disk.
type indexPages struct {
	NewlyDeletedMiB float64 `json:"newly_deleted_mib"`
	ReusableMiB     float64 `json:"reusable_mib"`
}

// vacuumVerbose VACUUMs table and reads what it did to its indexes.
func vacuumVerbose(ctx context.Context, dbURL, table string) (indexPages, error) {
	var out indexPages
	cfg, err := pgx.ParseConfig(libpqURL(dbURL))
	if err != nil {
		return out, err
	}
	var mu sync.Mutex
	var deleted, reusable int64
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		for _, m := range indexPagesRE.FindAllStringSubmatch(n.Message, -1) {
			d, _ := strconv.ParseInt(m[1], 10, 64)
			r, _ := strconv.ParseInt(m[2], 10, 64)
			mu.Lock()
			deleted, reusable = deleted+d, reusable+r
			mu.Unlock()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return out, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "VACUUM (VERBOSE) "+table); err != nil {
		return out, err
	}
	mu.Lock()
	defer mu.Unlock()
	return indexPages{NewlyDeletedMiB: mib(deleted * 8192), ReusableMiB: mib(reusable * 8192)}, nil
}

// pruneBaseline is how long the retention measurement's traffic runs
// before the prune starts.
const pruneBaseline = 15 * time.Second

// walCounters are pg_stat_wal's cumulative counters (the whole server).
type walCounters struct{ bytes, fpi float64 }

func walNow(ctx context.Context, conn *pgx.Conn) (walCounters, error) {
	var w walCounters
	err := conn.QueryRow(ctx, `SELECT wal_bytes::float8, wal_fpi::float8 FROM pg_stat_wal`).Scan(&w.bytes, &w.fpi)
	return w, err
}

// walRate is the server's WAL per second over a phase.
type walRate struct {
	MiBPerS float64 `json:"mib_per_s"`
	FPIPerS float64 `json:"full_page_images_per_s"`
}

func (w walCounters) since(w0 walCounters, d time.Duration) walRate {
	s := d.Seconds()
	return walRate{MiBPerS: round((w.bytes-w0.bytes)/(1<<20)/s, 1), FPIPerS: round((w.fpi-w0.fpi)/s, 0)}
}
