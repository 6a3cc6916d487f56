package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/signing"
)

// Scenario 1, delivery throughput: events already queued, every merchant
// answering 200 at once, against bare River working as many no-op jobs with
// the same pool size and fetch settings. The two run in alternating rounds
// (a batch of deliveries, a batch of no-op jobs, and again), so that a
// change in other people's load on the machine hits both alike.

type throughputResult struct {
	Events    int           `json:"events"` // per side, over every round
	Rounds    int           `json:"rounds"`
	Merchants int           `json:"merchants"`
	Service   throughputRun `json:"service"` // on an empty ledger
	Baseline  throughputRun `json:"bare_river"`
	Ratio     float64       `json:"ratio"` // service / bare River
	// PostBaseline is River + one signed POST per job to the same receiver,
	// no ledger: the floor the goal is measured against.
	PostBaseline throughputRun `json:"river_post"`
	PostRatio    float64       `json:"post_ratio"` // service / River + POST
	// Grown is the same service on the grown ledger (growth mode), its
	// rounds alternating with Service's: GrownRatio is grown / empty.
	Grown          *throughputRun `json:"grown,omitempty"`
	GrownRatio     float64        `json:"grown_ratio,omitempty"`
	GrownPostRatio float64        `json:"grown_post_ratio,omitempty"` // grown / River + POST
}

type throughputRun struct {
	// PerSecond is jobs per second over the rounds' windows, each from its
	// first job's start to its last job's completion as river_job records
	// them (one clock, the database's, for both sides).
	PerSecond float64 `json:"per_second"`
	WindowS   float64 `json:"window_s"`
	CPU       cpuUse  `json:"cpu"`
	// CPUPerJob is CPU milliseconds per job by process: steadier than the
	// rate on a shared machine, since other people's load slows a run down
	// without making each job cost more.
	CPUPerJob cpuCost `json:"cpu_ms_per_job"`
	// The service only: allocations in the service process per delivery
	// (go_memstats deltas around each batch, less a scrape's own), and its
	// peak RSS.
	AllocsPerDelivery float64 `json:"allocs_per_delivery,omitempty"`
	BytesPerDelivery  float64 `json:"bytes_per_delivery,omitempty"`
	PeakRSSMiB        float64 `json:"peak_rss_mib,omitempty"`
	// Stages is where the service's deliveries spent their time, per round.
	Stages []deliveryStages `json:"stages,omitempty"`
}

// throughputMerchants spreads the events so that the per-merchant cap (10
// attempts in flight) is not what limits the 100 workers.
const throughputMerchants = 20

func (b *bench) throughput(ctx context.Context) (*throughputResult, error) {
	rounds := b.opts.throughputRounds
	batch := b.opts.events / rounds
	if b.growth != nil {
		// Two ledgers to compare as well: more, alternating, rounds.
		rounds = 2*rounds + 2
	}
	res := &throughputResult{Events: batch * rounds, Rounds: rounds, Merchants: throughputMerchants}

	dbURL, err := b.pg.database(ctx, "throughput")
	if err != nil {
		return nil, err
	}
	empty := &deliverySide{name: "throughput", url: dbURL, run: &res.Service}
	for i := range throughputMerchants {
		name := fmt.Sprintf("throughput-%d", i)
		ep := b.rcv.endpoint(name, answerOK)
		m, err := b.createMerchant(ctx, dbURL, name, ep.url)
		if err != nil {
			return nil, err
		}
		ep.setSecret(m.WebhookSecret)
		empty.ms, empty.eps = append(empty.ms, m), append(empty.eps, ep)
	}
	b.emptyDB = &grownLedger{url: dbURL, ms: empty.ms, eps: empty.eps}
	if b.growth != nil {
		// The grown ledger's quiet merchant's counterpart: none of scenario 1's rows.
		if b.emptyDB.quiet, err = b.createMerchant(ctx, dbURL, "quiet", b.rcv.endpoint("quiet", answerOK).url); err != nil {
			return nil, err
		}
	}
	sides := []*deliverySide{empty}
	var env []string
	if b.growth != nil {
		g, err := b.grown(ctx, b.growth)
		if err != nil {
			return nil, err
		}
		res.Grown = &throughputRun{}
		sides = append(sides, &deliverySide{name: "throughput-grown", url: g.url, ms: g.ms, eps: g.eps, run: res.Grown})
		env = growthServiceEnv
	}
	for _, s := range sides {
		if s.svc, err = b.startService(ctx, s.name, s.url, "all", env...); err != nil {
			return nil, err
		}
		defer s.svc.stop()
	}

	riverURL, err := b.pg.database(ctx, "throughput_river")
	if err != nil {
		return nil, err
	}
	posts := make([]*endpoint, throughputMerchants)
	for i := range posts {
		posts[i] = b.rcv.endpoint(fmt.Sprintf("throughput-post-%d", i), answerOK)
		posts[i].setSecret(signing.NewSecret())
	}
	posted := func() (n int) {
		for _, ep := range posts {
			n += ep.count()
		}
		return n
	}
	var worked atomic.Int64
	r, err := startBareRiver(ctx, riverURL, func(int, time.Time) { worked.Add(1) }, posts...)
	if err != nil {
		return nil, err
	}
	defer r.stop()

	if len(sides) > 1 {
		// A fresh service's first batch pays for its caches and
		// connections; growth mode compares two, so both warm up first.
		for _, s := range sides {
			if err := b.deliverRound(ctx, s, batch/5, false); err != nil {
				return nil, err
			}
		}
	}
	var riverCPU, postCPU cpuAccum
	for round := range rounds {
		b.logf("throughput: round %d of %d: %d deliveries (per ledger), %d no-op jobs, %d signed POSTs", round+1, rounds, batch, batch, batch)
		// With two ledgers, each goes first every other round.
		for k := range sides {
			if err := b.deliverRound(ctx, sides[(k+round)%len(sides)], batch, true); err != nil {
				return nil, err
			}
		}

		// The same number of no-op jobs, then of signed POSTs, each queued
		// the same way (one commit).
		want := int(worked.Load()) + batch
		w, err := b.riverPhase(ctx, r, riverURL, batch, &riverCPU, func(j int) river.JobArgs { return noopArgs{Seq: j} },
			func() bool { return int(worked.Load()) >= want })
		if err != nil {
			return nil, fmt.Errorf("working no-op jobs: %w", err)
		}
		res.Baseline.WindowS += w
		wantPosts := posted() + batch
		if w, err = b.riverPhase(ctx, r, riverURL, batch, &postCPU, func(j int) river.JobArgs { return postArgs{Seq: j, Endpoint: j} },
			func() bool { return posted() >= wantPosts }); err != nil {
			return nil, fmt.Errorf("working POST jobs: %w", err)
		}
		res.PostBaseline.WindowS += w
	}
	for _, ep := range posts {
		if _, bad := ep.snapshot(); bad > 0 {
			return nil, fmt.Errorf("the POST baseline sent %d bad signatures", bad)
		}
	}
	n := res.Events
	for _, run := range []*throughputRun{&res.Baseline, &res.PostBaseline} {
		run.WindowS = round(run.WindowS, 3)
		run.PerSecond = round(float64(n)/run.WindowS, 0)
	}
	for _, s := range sides {
		s.run.WindowS = round(s.run.WindowS, 3)
		s.run.PerSecond = round(float64(n)/s.run.WindowS, 0)
		s.run.CPU, s.run.CPUPerJob = s.cpu.use(), s.cpu.perJob(n)
		s.run.AllocsPerDelivery = round(s.allocs/float64(n), 0)
		s.run.BytesPerDelivery = round(s.bytes/float64(n), 0)
		rss, err := s.svc.finish()
		if err != nil {
			return nil, err
		}
		s.run.PeakRSSMiB = mib(rss)
		b.noteRSS(s.name, s.run.PeakRSSMiB)
	}
	res.Baseline.CPU, res.Baseline.CPUPerJob = riverCPU.use(), riverCPU.perJob(n)
	res.PostBaseline.CPU, res.PostBaseline.CPUPerJob = postCPU.use(), postCPU.perJob(n)
	res.Ratio = round(res.Service.PerSecond/res.Baseline.PerSecond, 3)
	res.PostRatio = round(res.Service.PerSecond/res.PostBaseline.PerSecond, 3)
	b.logf("throughput: service %.0f deliveries/s (%s; per delivery %s)", res.Service.PerSecond, res.Service.CPU, res.Service.CPUPerJob)
	if g := res.Grown; g != nil {
		res.GrownRatio = round(g.PerSecond/res.Service.PerSecond, 3)
		res.GrownPostRatio = round(g.PerSecond/res.PostBaseline.PerSecond, 3)
		b.logf("throughput: service on the grown ledger %.0f deliveries/s (%s; per delivery %s): %.2f× the empty ledger's",
			g.PerSecond, g.CPU, g.CPUPerJob, res.GrownRatio)
	}
	b.logf("throughput: bare River %.0f jobs/s (%s; per job %s)", res.Baseline.PerSecond, res.Baseline.CPU, res.Baseline.CPUPerJob)
	b.logf("throughput: River + signed POST %.0f jobs/s (%s; per job %s); service / that %.2f",
		res.PostBaseline.PerSecond, res.PostBaseline.CPU, res.PostBaseline.CPUPerJob, res.PostRatio)
	return res, nil
}

// deliverySide is one service of scenario 1, on its own database: the
// empty ledger's, or in growth mode the grown one's.
type deliverySide struct {
	name          string
	url           string
	ms            []*merchant
	eps           []*endpoint
	svc           *service
	run           *throughputRun
	cpu           cpuAccum
	allocs, bytes float64
}

func (s *deliverySide) received() (n int) {
	for _, ep := range s.eps {
		n += ep.count()
	}
	return n
}

// deliverRound queues batch payments on s's database in one commit, waits
// until the receiver has every delivery and River has completed every job,
// and, if measure, adds the round's window, CPU and allocations to s.
func (b *bench) deliverRound(ctx context.Context, s *deliverySide, batch int, measure bool) error {
	// Before the batch takes its ids: a job committed meanwhile (a
	// periodic one) may take a higher id than the batch's.
	after, err := maxJobID(ctx, s.url)
	if err != nil {
		return err
	}
	q, err := prequeue(ctx, s.url, s.ms, batch)
	if err != nil {
		return err
	}
	m0, err := s.svc.scrape(ctx)
	if err == nil {
		_, err = s.svc.scrape(ctx) // measures a scrape's own allocations
	}
	m1, err2 := s.svc.scrape(ctx)
	if err != nil || err2 != nil {
		q.close()
		return fmt.Errorf("scraping the service: %w", cmpErr(err, err2))
	}
	want := s.received() + batch
	c0 := b.cpu.snapshot(s.svc.pid())
	err = q.commit(ctx)
	q.close()
	if err != nil {
		return err
	}
	if err := b.waitJobsDone(ctx, s.url, "webhook_delivery", after, batch, func() bool { return s.received() >= want }); err != nil {
		return fmt.Errorf("delivering (%s): %w", s.name, err)
	}
	if !measure {
		return nil
	}
	s.cpu.add(c0, b.cpu.snapshot(s.svc.pid()))
	m2, err := s.svc.scrape(ctx)
	if err != nil {
		return err
	}
	scrape := (m1["go_memstats_mallocs_total"] - m0["go_memstats_mallocs_total"]) / 2
	scrapeBytes := (m1["go_memstats_alloc_bytes_total"] - m0["go_memstats_alloc_bytes_total"]) / 2
	s.allocs += m2["go_memstats_mallocs_total"] - m1["go_memstats_mallocs_total"] - scrape
	s.bytes += m2["go_memstats_alloc_bytes_total"] - m1["go_memstats_alloc_bytes_total"] - scrapeBytes
	w, err := jobWindow(ctx, s.url, "webhook_delivery", after)
	if err != nil {
		return err
	}
	s.run.WindowS += w
	st, err := measureStages(ctx, s.url, after)
	if err != nil {
		return err
	}
	s.run.Stages = append(s.run.Stages, st)
	b.logf("throughput: %s: %s", s.name, st)
	return nil
}

// riverPhase queues n jobs made by args in one commit on the baselines'
// client, waits until done says they were worked and River completed them,
// adds the phase's CPU to acc, and returns its window in seconds.
func (b *bench) riverPhase(ctx context.Context, r *bareRiver, dbURL string, n int, acc *cpuAccum,
	args func(j int) river.JobArgs, done func() bool) (float64, error) {
	after, err := maxJobID(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	kind := args(0).Kind()
	for i := 0; i < n; i += 1000 {
		params := make([]river.InsertManyParams, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			params = append(params, river.InsertManyParams{Args: args(j)})
		}
		if _, err := r.client.InsertManyFastTx(ctx, tx, params); err != nil {
			_ = tx.Rollback(ctx)
			return 0, fmt.Errorf("queuing %s jobs: %w", kind, err)
		}
	}
	c0 := b.cpu.snapshot(0)
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	if err := b.waitJobsDone(ctx, dbURL, kind, after, n, done); err != nil {
		return 0, err
	}
	acc.add(c0, b.cpu.snapshot(0))
	return jobWindow(ctx, dbURL, kind, after)
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// queued holds transactions full of new payments, not yet committed.
type queued struct {
	pool *pgxpool.Pool
	txs  []pgx.Tx
}

// prequeueTxs transactions share the inserts; they commit together.
const prequeueTxs = 4

// prequeue creates n payments spread over ms (each one payment, one
// payment.pending event, one delivery and its River job), through db's own
// outbox path (PaymentCreateTx), in transactions left open: commit makes all
// of them visible at once, so the workers find a full queue.
func prequeue(ctx context.Context, dbURL string, ms []*merchant, n int) (*queued, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = prequeueTxs
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	store, err := db.NewStore(pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	q := &queued{pool: pool, txs: make([]pgx.Tx, prequeueTxs)}
	errs := make([]error, prequeueTxs)
	var wg sync.WaitGroup
	for t := range prequeueTxs {
		wg.Go(func() {
			tx, err := pool.Begin(ctx)
			if err != nil {
				errs[t] = err
				return
			}
			q.txs[t] = tx
			ref := "bench"
			for i := t; i < n; i += prequeueTxs {
				if _, err := store.PaymentCreateTx(ctx, tx, db.PaymentCreateParams{
					MerchantID: ms[i%len(ms)].ID, Amount: 5000, Currency: "XAF", Gateway: "sandbox",
					Reference: &ref, Metadata: map[string]string{"order": "42"},
				}); err != nil {
					errs[t] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := cmpErr(errs...); err != nil {
		q.close()
		return nil, fmt.Errorf("queuing events: %w", err)
	}
	return q, nil
}

func (q *queued) commit(ctx context.Context) error {
	errs := make([]error, len(q.txs))
	var wg sync.WaitGroup
	for i, tx := range q.txs {
		wg.Go(func() { errs[i] = tx.Commit(ctx) })
	}
	wg.Wait()
	if err := cmpErr(errs...); err != nil {
		return fmt.Errorf("committing queued events: %w", err)
	}
	return nil
}

// close rolls back whatever was not committed and closes the pool.
func (q *queued) close() {
	for _, tx := range q.txs {
		if tx != nil {
			_ = tx.Rollback(context.Background())
		}
	}
	q.pool.Close()
}

// waitJobsDone waits until the n jobs of kind after job id after are
// completed. It asks the database only once seen says the work is done (the
// receiver got every delivery, the no-op worker ran every job), so polling
// does not load the database it measures.
func (b *bench) waitJobsDone(ctx context.Context, dbURL, kind string, after int64, n int, seen func() bool) error {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Generous: a tenth of the slowest rate worth measuring.
	timeout := 60*time.Second + time.Duration(n)*20*time.Millisecond
	return waitFor(ctx, timeout, 5*time.Millisecond, func(ctx context.Context) (bool, error) {
		if !seen() {
			return false, nil
		}
		var done int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE id > $1 AND kind = $2 AND state = 'completed'`,
			after, kind).Scan(&done)
		return done >= n, err
	})
}

func maxJobID(ctx context.Context, dbURL string) (int64, error) {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var id int64
	err = conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM river_job`).Scan(&id)
	return id, err
}

// jobWindow is the time from the first start to the last completion of
// kind's jobs after job id after, in seconds.
func jobWindow(ctx context.Context, dbURL, kind string, after int64) (float64, error) {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s float64
	err = conn.QueryRow(ctx, `SELECT extract(epoch FROM max(finalized_at) - min(attempted_at))::float8
		FROM river_job WHERE id > $1 AND kind = $2`, after, kind).Scan(&s)
	if err != nil {
		return 0, fmt.Errorf("reading the %s window: %w", kind, err)
	}
	return s, nil
}

func mib(bytes int64) float64 { return round(float64(bytes)/(1<<20), 1) }
