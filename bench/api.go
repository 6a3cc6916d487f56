package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario 3, status-change API throughput: 16 clients, each creating a
// sandbox payment and simulating SUCCEEDED on it, over and over (two status
// changes, each with its event, delivery row and River job, in one
// transaction each). Baseline: pgbench running the same SQL statements
// (bench/pgbench/create_and_succeed.sql) with 16 clients. The two alternate
// in rounds, so that other people's load on the machine hits both alike.
// The service runs with ROLE=api, so no worker sends the queued
// deliveries: pgbench does not either.

const apiClients = 16

type apiResult struct {
	Clients   int     `json:"clients"`
	Rounds    int     `json:"rounds"`
	DurationS float64 `json:"duration_s"` // per side, over every round
	Service   apiRun  `json:"service"`
	PGBench   apiRun  `json:"pgbench"`
	Ratio     float64 `json:"ratio"` // service / pgbench
	// NotifyShare is the share of the service's job inserts that carried
	// River's insert notification (counted with LISTEN during the warm-up);
	// pgbench sends it as often.
	NotifyShare float64 `json:"notify_share"`
}

type apiRun struct {
	// PairsPerSecond counts create + simulate pairs (pgbench: transactions
	// of the script, which is one pair).
	PairsPerSecond float64 `json:"pairs_per_second"`
	Pairs          int     `json:"pairs"`
	Errors         int     `json:"errors"`
	CPU            cpuUse  `json:"cpu"`
	PeakRSSMiB     float64 `json:"peak_rss_mib,omitempty"`
}

func (b *bench) api(ctx context.Context) (*apiResult, error) {
	rounds := b.opts.apiRounds
	seg := b.opts.apiFor / time.Duration(rounds)
	res := &apiResult{Clients: apiClients, Rounds: rounds, DurationS: (seg * time.Duration(rounds)).Seconds()}

	dbURL, err := b.pg.database(ctx, "api")
	if err != nil {
		return nil, err
	}
	// The merchant has an endpoint, so every status change writes a delivery and a job.
	ep := b.rcv.endpoint("api", answerOK)
	m, err := b.createMerchant(ctx, dbURL, "api", ep.url)
	if err != nil {
		return nil, err
	}
	svc, err := b.startService(ctx, "api", dbURL, "api")
	if err != nil {
		return nil, err
	}
	defer svc.stop()
	client := newAPIClient(svc.base, m.APIKey)

	notes, err := countNotifications(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	jobs0, err := countJobs(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	b.pairs(ctx, client, warmup)
	sent := notes()
	jobs1, err := countJobs(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	if jobs1 > jobs0 {
		res.NotifyShare = round(min(float64(sent)/float64(jobs1-jobs0), 1), 3)
	}

	pg, err := b.newPGBench(ctx, res.NotifyShare)
	if err != nil {
		return nil, err
	}
	if _, err := pg.run(ctx, warmup); err != nil {
		return nil, err
	}
	var svcCPU, pgCPU cpuAccum
	var svcTime time.Duration
	for round := range rounds {
		b.logf("api: round %d of %d: HTTP for %s, then pgbench for %s", round+1, rounds, seg, seg)
		c0 := b.cpu.snapshot(svc.pid())
		run, took := b.pairs(ctx, client, seg)
		svcCPU.add(c0, b.cpu.snapshot(svc.pid()))
		res.Service.Pairs += run.Pairs
		res.Service.Errors += run.Errors
		svcTime += took

		c0 = b.cpu.snapshot(0)
		out, err := pg.run(ctx, seg)
		if err != nil {
			return nil, err
		}
		pgCPU.add(c0, b.cpu.snapshot(0))
		res.PGBench.Pairs += out.Pairs
		res.PGBench.Errors += out.Errors
	}
	res.Service.PairsPerSecond = round(float64(res.Service.Pairs)/svcTime.Seconds(), 1)
	// pgbench's own clock: its run time without connecting.
	res.PGBench.PairsPerSecond = round(float64(res.PGBench.Pairs)/(seg*time.Duration(rounds)).Seconds(), 1)
	res.Service.CPU, res.PGBench.CPU = svcCPU.use(), pgCPU.use()
	res.Ratio = round(res.Service.PairsPerSecond/res.PGBench.PairsPerSecond, 3)
	if res.Service.Errors > 0 {
		return nil, fmt.Errorf("%d of the service's create+simulate pairs failed (the first is logged above)", res.Service.Errors)
	}
	rss, err := svc.finish()
	if err != nil {
		return nil, err
	}
	res.Service.PeakRSSMiB = mib(rss)
	b.noteRSS("api", res.Service.PeakRSSMiB)
	b.logf("api: HTTP %.0f pairs/s (%s); %.0f%% of job inserts notified", res.Service.PairsPerSecond, res.Service.CPU, res.NotifyShare*100)
	b.logf("api: pgbench %.0f tps (%s)", res.PGBench.PairsPerSecond, res.PGBench.CPU)
	return res, nil
}

// pairs runs apiClients closed loops of create + simulate SUCCEEDED for d,
// and returns what they did and how long it took (until the last pair ended).
func (b *bench) pairs(ctx context.Context, c *apiClient, d time.Duration) (apiRun, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	var pairs, errs atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range apiClients {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				id, err := c.createPayment(ctx)
				if err == nil {
					err = c.simulate(ctx, id, "SUCCEEDED")
				}
				if err != nil {
					if errs.Add(1) == 1 {
						b.logf("api: %v", err)
					}
					time.Sleep(20 * time.Millisecond) // no busy loop against a failing service
					continue
				}
				pairs.Add(1)
			}
		})
	}
	wg.Wait()
	return apiRun{Pairs: int(pairs.Load()), Errors: int(errs.Load())}, time.Since(start)
}

var txRE = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
var failedRE = regexp.MustCompile(`number of failed transactions: ([0-9]+)`)

// pgBench runs bench/pgbench/create_and_succeed.sql with apiClients
// clients on a fresh database with one merchant made by the CLI, as the
// service's was.
type pgBench struct {
	b    *bench
	args []string
}

func (b *bench) newPGBench(ctx context.Context, notifyShare float64) (*pgBench, error) {
	dbURL, err := b.pg.database(ctx, "api_pgbench")
	if err != nil {
		return nil, err
	}
	ep := b.rcv.endpoint("api-pgbench", answerOK)
	m, err := b.createMerchant(ctx, dbURL, "api-pgbench", ep.url)
	if err != nil {
		return nil, err
	}
	setup, err := os.ReadFile(filepath.Join(b.repo, "bench", "pgbench", "setup.sql"))
	if err != nil {
		return nil, err
	}
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, string(setup))
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench/pgbench/setup.sql: %w", err)
	}
	hash := sha256.Sum256([]byte(m.APIKey))
	return &pgBench{b: b, args: []string{"-n", "-M", "prepared", "-c", strconv.Itoa(apiClients), "-j", "2",
		"-f", filepath.Join(b.repo, "bench", "pgbench", "create_and_succeed.sql"),
		"-D", "merchant_id=" + m.ID.String(), "-D", "key_hash=" + hex.EncodeToString(hash[:]),
		"-D", "notify_permille=" + strconv.Itoa(int(notifyShare*1000+0.5)),
		libpqURL(dbURL)}}, nil
}

// run runs pgbench for d (whole seconds) and reads its summary.
func (p *pgBench) run(ctx context.Context, d time.Duration) (apiRun, error) {
	args := append([]string{"-T", strconv.Itoa(max(int(d.Seconds()), 1))}, p.args...)
	cmd := exec.CommandContext(ctx, p.b.pgbenchPath, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return apiRun{}, fmt.Errorf("pgbench: %w\n%s", err, out.String())
	}
	var r apiRun
	tx := txRE.FindStringSubmatch(out.String())
	if tx == nil {
		return apiRun{}, fmt.Errorf("pgbench printed no transaction count:\n%s", out.String())
	}
	r.Pairs, _ = strconv.Atoi(tx[1])
	if s := failedRE.FindStringSubmatch(out.String()); s != nil {
		r.Errors, _ = strconv.Atoi(s[1])
	}
	return r, nil
}

// countNotifications counts River's insert notifications on dbURL's
// database from now until the returned func is called; it returns the count.
func countNotifications(ctx context.Context, dbURL string) (func() int, error) {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	// River's topic: <schema>.river_insert.
	if _, err := conn.Exec(ctx, `LISTEN "public.river_insert"`); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return func() int {
		// Let notifications of the last commits arrive.
		time.Sleep(100 * time.Millisecond)
		cancel()
		<-done
		conn.Close(context.WithoutCancel(ctx))
		return int(n.Load())
	}, nil
}

func countJobs(ctx context.Context, dbURL string) (int, error) {
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&n)
	return n, err
}
