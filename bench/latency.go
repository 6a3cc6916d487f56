package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario 2, end-to-end latency: payments created through the HTTP API at
// a steady rate; for each, the time from its commit (the 201 reaching the
// client, a hair after the commit) to its payment.pending delivery arriving,
// signed and verified, at the receiver. Baseline: bare River, a no-op job
// inserted and committed at the same rate, from commit to the worker
// starting it: the queue's latency alone.

const (
	latencyRate    = 200.0 // events per second
	latencySenders = 32    // concurrent requests the load generator may have open
	warmup         = 2 * time.Second
)

type latencyResult struct {
	Rate      float64    `json:"events_per_second"`
	DurationS float64    `json:"duration_s"`
	Service   latencyRun `json:"service"` // on an empty ledger
	// Grown is the same on the grown ledger (growth mode).
	Grown    *latencyRun `json:"grown,omitempty"`
	Baseline latencyRun  `json:"river_noop"`
}

type latencyRun struct {
	latency
	// Create is how long POST /v1/payments took (request sent to 201 read),
	// with the workers delivering meanwhile; service only.
	Create *latency `json:"create,omitempty"`
	// MaxLagMS is the latest a create started behind schedule: when large,
	// the load generator (not the service) shaped the numbers.
	MaxLagMS   float64 `json:"max_lag_ms"`
	Errors     int     `json:"errors"`
	CPU        cpuUse  `json:"cpu"`
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
	// Timeline is the same latencies by when the event was committed, in
	// 5 s slices: whether they hold steady or grow.
	Timeline []slice `json:"by_5s,omitempty"`
}

// slice is the latencies of the events committed in one 5 s slice of a run.
type slice struct {
	StartS float64 `json:"start_s"`
	latency
}

const sliceLen = 5 * time.Second

// timeline cuts latencies (keyed by commit time) into sliceLen slices.
func timeline(committed []time.Time, ds []time.Duration) []slice {
	if len(committed) == 0 {
		return nil
	}
	start := slices.MinFunc(committed, func(a, b time.Time) int { return a.Compare(b) })
	var by [][]time.Duration
	for i, t := range committed {
		k := int(t.Sub(start) / sliceLen)
		for len(by) <= k {
			by = append(by, nil)
		}
		by[k] = append(by[k], ds[i])
	}
	out := make([]slice, len(by))
	for k, d := range by {
		out[k] = slice{StartS: (time.Duration(k) * sliceLen).Seconds(), latency: summarize(d, 0)}
	}
	return out
}

func (b *bench) latency(ctx context.Context) (*latencyResult, error) {
	n := int(latencyRate * b.opts.latencyFor.Seconds())
	res := &latencyResult{Rate: latencyRate, DurationS: b.opts.latencyFor.Seconds()}

	dbURL, err := b.pg.database(ctx, "latency")
	if err != nil {
		return nil, err
	}
	sides := []*latencySide{{name: "latency", url: dbURL, run: &res.Service}}
	// One segment of n creates; in growth mode the empty and the grown
	// ledger take turns, half of n each time, in the order ABBA, so that a
	// change in other people's load hits both alike.
	order := []int{0}
	if b.growth != nil {
		g, err := b.grown(ctx, b.growth)
		if err != nil {
			return nil, err
		}
		res.Grown = &latencyRun{}
		sides[0].env = growthServiceEnv
		sides = append(sides, &latencySide{name: "latency-grown", url: g.url, env: growthServiceEnv, run: res.Grown})
		order = []int{0, 1, 1, 0}
	}
	for _, s := range sides {
		if err := b.startLatencySide(ctx, s); err != nil {
			return nil, err
		}
		defer s.svc.stop()
	}
	for _, k := range order {
		s := sides[k]
		c0 := b.cpu.snapshot(s.svc.pid())
		l := b.createAtRate(ctx, s.clients, nil, latencyRate, n*len(sides)/len(order))
		s.cpu.add(c0, b.cpu.snapshot(s.svc.pid()))
		maps.Copy(s.committed, l.committed[0])
		s.durations = append(s.durations, l.durations...)
		s.maxLag, s.errors = max(s.maxLag, l.maxLag), s.errors+l.errors
	}
	for _, s := range sides {
		create := summarize(s.durations, 0)
		if *s.run, err = b.deliveryLatencies(ctx, s.ep, s.committed, 30*time.Second); err != nil {
			return nil, err
		}
		s.run.CPU = s.cpu.use()
		s.run.MaxLagMS, s.run.Errors, s.run.Create = ms(s.maxLag), s.errors, &create
		if s.errors > 0 {
			return nil, fmt.Errorf("%d creates failed (the first is logged above)", s.errors)
		}
		rss, err := s.svc.finish()
		if err != nil {
			return nil, err
		}
		s.run.PeakRSSMiB = mib(rss)
		b.noteRSS(s.name, s.run.PeakRSSMiB)
		b.logf("latency (%s): service p50 %.1f p90 %.1f p99 %.1f max %.1f ms (%s); POST /v1/payments p50 %.1f p99 %.1f max %.1f ms",
			s.name, s.run.P50, s.run.P90, s.run.P99, s.run.Max, s.run.CPU, create.P50, create.P99, create.Max)
	}

	res.Baseline, err = b.riverLatency(ctx, n)
	if err != nil {
		return nil, err
	}
	b.logf("latency: River no-op p50 %.1f p90 %.1f p99 %.1f max %.1f ms (%s)",
		res.Baseline.P50, res.Baseline.P90, res.Baseline.P99, res.Baseline.Max, res.Baseline.CPU)
	return res, nil
}

// latencySide is one service of scenario 2, on its own database, with its
// own merchant and endpoint, and what its segments measured.
type latencySide struct {
	name, url string
	env       []string
	run       *latencyRun
	ep        *endpoint
	svc       *service
	clients   []*apiClient
	cpu       cpuAccum
	committed map[string]time.Time
	durations []time.Duration
	maxLag    time.Duration
	errors    int
}

// startLatencySide creates s's merchant, starts its service and warms it up.
func (b *bench) startLatencySide(ctx context.Context, s *latencySide) error {
	s.ep = b.rcv.endpoint(s.name, answerOK)
	m, err := b.createMerchant(ctx, s.url, s.name, s.ep.url)
	if err != nil {
		return err
	}
	s.ep.setSecret(m.WebhookSecret)
	if s.svc, err = b.startService(ctx, s.name, s.url, "all", s.env...); err != nil {
		return err
	}
	s.clients = []*apiClient{newAPIClient(s.svc.base, m.APIKey)}
	s.committed = map[string]time.Time{}
	b.createAtRate(ctx, s.clients, nil, latencyRate, int(latencyRate*warmup.Seconds()))
	return nil
}

// load is what createAtRate did: per client, each payment's commit time by id.
type load struct {
	committed []map[string]time.Time
	maxLag    time.Duration
	errors    int
	durations []time.Duration // each create's, request to answer
}

// createAtRate creates n payments through the API at rate, the i-th as
// clients[pick(i)] (nil pick: clients[0]).
func (b *bench) createAtRate(ctx context.Context, clients []*apiClient, pick func(i int) int, rate float64, n int) *load {
	return b.createAtRateUntil(ctx, ctx, clients, pick, rate, n)
}

// createAtRateUntil is createAtRate that stops starting creates when until
// is done; the creates under way finish with ctx.
func (b *bench) createAtRateUntil(ctx, until context.Context, clients []*apiClient, pick func(i int) int, rate float64, n int) *load {
	l := &load{committed: make([]map[string]time.Time, len(clients))}
	for i := range clients {
		l.committed[i] = make(map[string]time.Time, n/len(clients)+1)
	}
	var mu sync.Mutex
	var errs atomic.Int64
	l.maxLag = pace(until, n, rate, latencySenders, func(_ context.Context, i int) {
		k := 0
		if pick != nil {
			k = pick(i)
		}
		start := time.Now()
		id, err := clients[k].createPayment(ctx)
		at := time.Now()
		if err != nil {
			if errs.Add(1) == 1 {
				b.logf("create failed: %v", err)
			}
			return
		}
		mu.Lock()
		l.committed[k][id] = at
		l.durations = append(l.durations, at.Sub(start))
		mu.Unlock()
	})
	l.errors = int(errs.Load())
	return l
}

// deliveryLatencies waits (up to wait) for the payment.pending delivery of
// every committed payment to reach ep, and summarizes commit to arrival.
func (b *bench) deliveryLatencies(ctx context.Context, ep *endpoint, committed map[string]time.Time, wait time.Duration) (latencyRun, error) {
	arrived := func() map[string]time.Time { return ep.firstArrivals("payment.pending") }
	_ = waitFor(ctx, wait, 50*time.Millisecond, func(context.Context) (bool, error) {
		got := arrived()
		for id := range committed {
			if _, ok := got[id]; !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if _, bad := ep.snapshot(); bad > 0 {
		return latencyRun{}, fmt.Errorf("%d deliveries to %s had a bad signature", bad, ep.url)
	}
	got := arrived()
	ds := make([]time.Duration, 0, len(committed))
	at := make([]time.Time, 0, len(committed))
	missing := 0
	for id, t0 := range committed {
		if t1, ok := got[id]; ok {
			ds = append(ds, t1.Sub(t0))
			at = append(at, t0)
		} else {
			missing++
		}
	}
	return latencyRun{latency: summarize(ds, missing), Timeline: timeline(at, ds)}, nil
}

// riverLatency is the baseline: no-op jobs inserted and committed at the
// same rate into bare River, from commit to the worker starting each.
func (b *bench) riverLatency(ctx context.Context, n int) (latencyRun, error) {
	dbURL, err := b.pg.database(ctx, "latency_river")
	if err != nil {
		return latencyRun{}, err
	}
	warm := int(latencyRate * warmup.Seconds())
	var mu sync.Mutex
	started := make([]time.Time, warm+n)
	committed := make([]time.Time, warm+n)
	r, err := startBareRiver(ctx, dbURL, func(seq int, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if seq < len(started) && started[seq].IsZero() {
			started[seq] = at
		}
	})
	if err != nil {
		return latencyRun{}, err
	}
	defer r.stop()
	var errs atomic.Int64
	insert := func(ctx context.Context, seq int) {
		tx, err := r.pool.Begin(ctx)
		if err == nil {
			if _, err = r.client.InsertTx(ctx, tx, noopArgs{Seq: seq}, nil); err == nil {
				err = tx.Commit(ctx)
			}
			_ = tx.Rollback(ctx)
		}
		at := time.Now()
		if err != nil {
			errs.Add(1)
			return
		}
		mu.Lock()
		committed[seq] = at
		mu.Unlock()
	}
	pace(ctx, warm, latencyRate, latencySenders, insert)
	c0 := b.cpu.snapshot(0)
	lag := pace(ctx, n, latencyRate, latencySenders, func(ctx context.Context, i int) { insert(ctx, warm+i) })
	_ = waitFor(ctx, 30*time.Second, 50*time.Millisecond, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for seq := warm; seq < warm+n; seq++ {
			if started[seq].IsZero() && !committed[seq].IsZero() {
				return false, nil
			}
		}
		return true, nil
	})
	run := latencyRun{CPU: c0.use(b.cpu.snapshot(0)), MaxLagMS: ms(lag), Errors: int(errs.Load())}
	mu.Lock()
	defer mu.Unlock()
	ds := make([]time.Duration, 0, n)
	at := make([]time.Time, 0, n)
	missing := 0
	for seq := warm; seq < warm+n; seq++ {
		switch {
		case committed[seq].IsZero():
		case started[seq].IsZero():
			missing++
		default:
			ds = append(ds, started[seq].Sub(committed[seq]))
			at = append(at, committed[seq])
		}
	}
	run.latency = summarize(ds, missing)
	run.Timeline = timeline(at, ds)
	return run, nil
}
