// Command bench is `make bench`: BoohPay's performance, each number beside a
// baseline measured in the same run on the same machine, because absolute
// numbers drift on a shared machine and ratios do not (much).
//
// It starts its own Postgres (scripts/pg.sh's "bench" instance, fsync on),
// runs the real binary (bin/boohpay serve) as a child process for every
// service run, plays the merchants with a local receiver that verifies every
// signature, and runs the scenarios of issue 7 (see docs/BENCHMARKS.md). It
// writes bench/results/latest.json and docs/benchmarks.svg and prints a
// short table. Everything listens on and talks to 127.0.0.1 only.
//
//	go build -o bin/boohpay ./cmd/boohpay && go run ./bench [-quick]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	quick        bool
	bin          string
	port         int
	out          string
	chart        string
	poolMaxConns int
	only         string
	keepLogs     bool
	growth       int // rows already in the ledger before scenario 1

	events           int // scenario 1, per side
	throughputRounds int
	latencyFor       time.Duration // scenario 2
	apiFor           time.Duration // scenario 3, per side
	apiRounds        int
	retryDeliveries  int           // scenario 4
	noisyFor         time.Duration // scenario 5
}

// scenarios in the order they run; -only picks some.
var scenarios = []string{"throughput", "latency", "api", "retry", "noisy"}

// bench is one run: its options and what every scenario shares.
type bench struct {
	opts        options
	repo        string
	bin         string
	pgbenchPath string
	logDir      string
	pg          *cluster
	rcv         *receiver
	cpu         cpuMeter
	started     time.Time
	stderr      io.Writer

	mu  sync.Mutex
	rss map[string]float64

	// Growth mode: what it measured, the grown database every scenario
	// reuses, and scenario 1's empty one.
	growth  *growthResult
	grownDB *grownLedger
	emptyDB *grownLedger
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "smaller scenarios: the whole run in under 3 minutes")
	fs.StringVar(&o.bin, "bin", "bin/boohpay", "the service binary (make build)")
	fs.IntVar(&o.port, "port", 54349, "port of the bench Postgres")
	fs.StringVar(&o.out, "out", "bench/results/latest.json", "where to write the results")
	fs.StringVar(&o.chart, "chart", "docs/benchmarks.svg", "where to write the chart")
	fs.IntVar(&o.poolMaxConns, "pool-max-conns", 0, "pool_max_conns for the service and the baselines (0: db.Connect's default, 20)")
	fs.StringVar(&o.only, "only", "", "run only these scenarios (comma-separated: "+strings.Join(scenarios, ",")+"); results go to a temporary file unless -out is given")
	fs.IntVar(&o.growth, "growth", 0, "growth mode: scenarios 1 and 2 also run on a ledger of this many delivered deliveries (3 attempts each, 30 days), then the ledger's plans and a day's retention are measured")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the service logs even when the run succeeds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.events, o.throughputRounds, o.latencyFor, o.apiFor, o.apiRounds, o.retryDeliveries, o.noisyFor =
		20000, 4, 30*time.Second, 30*time.Second, 5, 20, 40*time.Second
	if o.quick {
		o.events, o.throughputRounds, o.latencyFor, o.apiFor, o.apiRounds, o.retryDeliveries, o.noisyFor =
			6000, 2, 10*time.Second, 8*time.Second, 4, 10, 15*time.Second
	}
	selected := scenarios
	if o.only != "" {
		selected = strings.Split(o.only, ",")
		for _, s := range selected {
			if !slices.Contains(scenarios, s) {
				return fmt.Errorf("-only: unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
			}
		}
		outGiven := false
		fs.Visit(func(f *flag.Flag) { outGiven = outGiven || f.Name == "out" })
		if !outGiven {
			o.out = filepath.Join(os.TempDir(), "boohpay-bench-only.json")
		}
	}

	b := &bench{opts: o, started: time.Now(), stderr: stderr, rss: map[string]float64{}}
	if o.growth > 0 {
		b.growth = &growthResult{}
	}
	if b.repo, err = os.Getwd(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(b.repo, "scripts", "pg.sh")); err != nil {
		return errors.New("run from the repository root (make bench)")
	}
	if b.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("%s: %w (make build)", o.bin, err)
	}
	if b.pgbenchPath, err = exec.LookPath("pgbench"); err != nil {
		return errors.New("pgbench not found (Debian: apt-get install postgresql-client)")
	}
	if b.logDir, err = os.MkdirTemp("", "boohpay-bench-"); err != nil {
		return err
	}

	res := &results{GeneratedAt: time.Now().UTC(), Command: "make bench", Quick: o.quick, Commit: gitCommit(b.repo),
		Machine: describeMachine(), Errors: map[string]string{}}
	if o.quick {
		res.Command = "make bench QUICK=1"
	}
	res.Growth = b.growth

	b.logf("starting postgres (scripts/pg.sh start bench %d)", o.port)
	if b.pg, err = startCluster(ctx, b.repo, o.port, o.poolMaxConns); err != nil {
		return err
	}
	defer func() {
		if dropErr := b.pg.dropAll(context.WithoutCancel(ctx)); dropErr != nil {
			b.logf("dropping the bench databases: %v", dropErr)
		}
		if stopErr := b.pg.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	b.cpu = cpuMeter{postmasterPID: b.pg.postmasterPID}
	if res.Machine.Postgres, err = b.pg.settings(ctx); err != nil {
		return err
	}
	res.Settings = settings{
		PoolMaxConns:        b.pg.poolSize(),
		DeliveryWorkers:     riverWorkers,
		FetchPollIntervalMS: float64(riverFetchPollInterval.Milliseconds()),
		FetchCooldownMS:     float64(riverFetchCooldown.Milliseconds()),
		ServiceLogLevel:     "info (the default)",
	}
	if err := b.pg.prepareTemplate(ctx); err != nil {
		return err
	}
	if b.rcv, err = startReceiver(); err != nil {
		return err
	}
	defer b.rcv.close()

	for _, name := range selected {
		if ctx.Err() != nil {
			break
		}
		b.logf("scenario %s", name)
		var err error
		switch name {
		case "throughput":
			res.Throughput, err = b.throughput(ctx)
		case "latency":
			res.Latency, err = b.latency(ctx)
		case "api":
			res.API, err = b.api(ctx)
		case "retry":
			res.Retry, err = b.retry(ctx)
		case "noisy":
			res.Noisy, err = b.noisy(ctx)
		}
		if err != nil {
			b.logf("scenario %s failed: %v", name, err)
			res.Errors[name] = err.Error()
		}
	}
	if b.growth != nil && ctx.Err() == nil {
		b.logf("growth: the ledger's plans and a day's retention")
		if err := b.measureGrowth(ctx); err != nil {
			b.logf("growth failed: %v", err)
			res.Errors["growth"] = err.Error()
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	if len(b.rss) > 0 {
		res.Resources = &resources{PeakRSSByRun: b.rss}
		for _, v := range b.rss {
			res.Resources.PeakRSSMiB = max(res.Resources.PeakRSSMiB, v)
		}
		if t := res.Throughput; t != nil {
			res.Resources.AllocsPerDelivery, res.Resources.BytesPerDelivery = t.Service.AllocsPerDelivery, t.Service.BytesPerDelivery
		}
	}
	res.Machine.LoadAvgEnd = loadavg()
	res.DurationS = round(time.Since(b.started).Seconds(), 0)
	res.judge()
	if err := res.write(o.out); err != nil {
		return err
	}
	if o.only == "" {
		if err := writeChart(o.chart, res); err != nil {
			return err
		}
	}
	res.table(stdout)
	fmt.Fprintf(stdout, "\nwrote %s", o.out)
	if o.only == "" {
		fmt.Fprintf(stdout, " and %s", o.chart)
	}
	fmt.Fprintln(stdout)
	if len(res.Errors) > 0 || o.keepLogs {
		fmt.Fprintf(stdout, "service logs: %s\n", b.logDir)
	} else {
		os.RemoveAll(b.logDir)
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s", len(res.Errors), strings.Join(slices.Sorted(maps.Keys(res.Errors)), ", "))
	}
	return nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "[%5.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// noteRSS keeps a service run's peak RSS for scenario 6.
func (b *bench) noteRSS(run string, mib float64) {
	if mib <= 0 {
		return
	}
	b.mu.Lock()
	b.rss[run] = mib
	b.mu.Unlock()
}

// gitCommit names the code measured: HEAD, with "+dirty" for uncommitted changes.
func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "+dirty"
	}
	return commit
}
