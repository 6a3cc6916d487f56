package metrics_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/metrics"
	"github.com/boohpay/boohpay/metrics/metricstest"
)

// insertJobs adds n river_job rows in state on queue via generate_series;
// finalized states get a finalized_at, as River's constraint requires.
func (b *testBundle) insertJobs(t *testing.T, n int, queue, state string, scheduledAgo time.Duration) {
	t.Helper()
	b.exec(t, `INSERT INTO river_job (state, max_attempts, kind, queue, args, scheduled_at, finalized_at)
		SELECT $1::text::river_job_state, 25, 'webhook_delivery', $2, '{}', now() - $3::interval,
			CASE WHEN $1::text IN ('completed', 'cancelled', 'discarded') THEN now() END
		FROM generate_series(1, $4::int)`, state, queue, scheduledAgo, n)
}

func TestQueueSizeCountsUnfinishedJobsByQueueAndState(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{Queues: []string{"default", "idle"}})
	b.insertJobs(t, 3, "default", "available", 90*time.Second)
	b.insertJobs(t, 2, "default", "retryable", 0)
	b.insertJobs(t, 1, "default", "running", 0)
	b.insertJobs(t, 4, "other", "scheduled", -time.Hour)
	b.insertJobs(t, 50, "default", "completed", 0) // history, not queue
	b.insertJobs(t, 5, "default", "discarded", 0)

	text := string(b.scrape(t))
	for _, line := range []string{
		`queue_size{queue="default",state="available"} 3`,
		`queue_size{queue="default",state="retryable"} 2`,
		`queue_size{queue="default",state="running"} 1`,
		`queue_size{queue="default",state="scheduled"} 0`,
		`queue_size{queue="default",state="pending"} 0`,
		`queue_size{queue="other",state="scheduled"} 4`,
		`queue_size{queue="idle",state="available"} 0`, // configured: present while empty
		`boohpay_queue_oldest_available_age_seconds{queue="idle"} 0`,
		`boohpay_collector_up{collector="queue"} 1`,
	} {
		require.Contains(t, text, line+"\n")
	}
	require.NotContains(t, text, `state="completed"`)
	age := sampleValue(t, text, `boohpay_queue_oldest_available_age_seconds{queue="default"}`)
	require.InDelta(t, 90, age, 30)
}

func TestDeliveriesGaugeCountsUnfinishedLedgerRows(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	text := string(b.scrape(t))
	require.Contains(t, text, `boohpay_webhook_deliveries_unfinished{status="PENDING"} 0`+"\n")
	require.Contains(t, text, `boohpay_webhook_deliveries_unfinished{status="PROCESSING"} 0`+"\n")
	require.Contains(t, text, `boohpay_collector_up{collector="webhook_deliveries"} 1`+"\n")
}

func TestEndpointsGaugeCountsByStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	text := string(b.scrape(t))
	for _, s := range []string{"enabled", "failing", "disabled_merchant", "disabled_failing"} {
		require.Contains(t, text, `boohpay_webhook_endpoints{status="`+s+`"} 0`+"\n", "present at 0 from the first scrape")
	}
	b.exec(t, `INSERT INTO merchants (name, webhook_url) VALUES ('A', 'https://a.example.com'), ('B', 'https://b.example.com'),
		('C', 'https://c.example.com'), ('D', 'https://d.example.com')`)
	b.exec(t, `UPDATE webhook_endpoints SET failing_since = now() WHERE url = 'https://b.example.com'`)
	b.exec(t, `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'failing', failing_since = now()
		WHERE url = 'https://c.example.com'`)
	b.exec(t, `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'merchant' WHERE url = 'https://d.example.com'`)
	text = string(b.scrape(t))
	for _, line := range []string{
		`boohpay_webhook_endpoints{status="enabled"} 1`,
		`boohpay_webhook_endpoints{status="failing"} 1`,
		`boohpay_webhook_endpoints{status="disabled_failing"} 1`,
		`boohpay_webhook_endpoints{status="disabled_merchant"} 1`,
		`boohpay_collector_up{collector="webhook_endpoints"} 1`,
	} {
		require.Contains(t, text, line+"\n")
	}
}

func TestFailingQueryIsAMetricNotABrokenScrape(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	b.exec(t, `ALTER TABLE river_job RENAME TO river_job_gone`)
	require.Equal(t, 0.0, b.collectorUp(t, "queue"))
	require.Equal(t, 1.0, b.collectorUp(t, "webhook_deliveries"))
	text := string(b.scrape(t))
	require.NotContains(t, text, "queue_size{")
	_, err := b.reg.Gather()
	require.NoError(t, err, "a failed query is reported, not raised")
}

func TestQueryTimeoutIsTheCollectorsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{QueryTimeout: time.Nanosecond})
	require.Equal(t, 0.0, b.collectorUp(t, "queue"))
	require.Equal(t, 0.0, b.collectorUp(t, "webhook_deliveries"))
}

// TestQueueQueryUsesRiversFetchingIndex checks the plan, not the clock: with
// many finished jobs the count reads River's fetching index for the
// unfinished states only.
func TestQueueQueryUsesRiversFetchingIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	b.insertJobs(t, 100_000, "default", "completed", 0)
	b.insertJobs(t, 10, "default", "available", 0)
	b.exec(t, `ANALYZE river_job`)
	plan := explain(t, b, metrics.QueueSQL)
	require.Contains(t, plan, "river_job_prioritized_fetching_index", plan)
	require.NotContains(t, plan, "Seq Scan", plan)

	plan = explain(t, b, metrics.DeliveriesSQL)
	require.NotContains(t, plan, "Seq Scan on webhook_deliveries", plan)
}

// TestQueueCollectorWithOneMillionFinishedJobs measures a scrape with
// 1,000,000 finished jobs in river_job. It takes a while to set up, so it
// runs only with BOOHPAY_MEASURE_QUEUE=1, and it reports timings rather than
// asserting them:
//
//	BOOHPAY_MEASURE_QUEUE=1 go test ./metrics -run OneMillion -v
func TestQueueCollectorWithOneMillionFinishedJobs(t *testing.T) {
	if os.Getenv("BOOHPAY_MEASURE_QUEUE") != "1" {
		t.Skip("set BOOHPAY_MEASURE_QUEUE=1 to measure")
	}
	b := setup(t, metrics.Config{})
	start := time.Now()
	b.insertJobs(t, 950_000, "default", "completed", 0)
	b.insertJobs(t, 40_000, "default", "discarded", 0)
	b.insertJobs(t, 10_000, "default", "cancelled", 0)
	b.insertJobs(t, 500, "default", "available", time.Minute)
	b.insertJobs(t, 200, "default", "retryable", 0)
	b.insertJobs(t, 100, "default", "scheduled", -time.Hour)
	t.Logf("inserted 1,000,000 finished + 800 unfinished jobs in %s", time.Since(start).Round(time.Millisecond))

	timeGather := func(g prometheus.Gatherer) []time.Duration {
		var times []time.Duration
		for i := 0; i < 20; i++ {
			s := time.Now()
			_, err := g.Gather()
			require.NoError(t, err)
			times = append(times, time.Since(s))
		}
		return times
	}
	measure := func(label string) {
		queueOnly := prometheus.NewRegistry()
		queueOnly.MustRegister(metrics.NewQueueCollector(b.pool))
		all := prometheus.NewRegistry()
		metrics.New(all, metrics.Config{Pool: b.pool})
		for _, g := range []struct {
			name string
			reg  prometheus.Gatherer
		}{{"queue collector alone", queueOnly}, {"whole /metrics registry", all}} {
			times := timeGather(g.reg)
			t.Logf("%s, %s: first %s, median of 20 %s, max %s", label, g.name,
				times[0].Round(time.Microsecond), median(times).Round(time.Microsecond), maxOf(times).Round(time.Microsecond))
		}
		t.Logf("%s: plan\n%s", label, explainAnalyze(t, b, metrics.QueueSQL))
	}
	measure("before ANALYZE")
	b.exec(t, `ANALYZE river_job`)
	measure("after ANALYZE")
	text := string(b.scrape(t))
	require.Contains(t, text, `queue_size{queue="default",state="available"} 500`+"\n")
	metricstest.Promtool(t, []byte(text))
}

func explain(t *testing.T, b *testBundle, sql string) string {
	t.Helper()
	return queryPlan(t, b, "EXPLAIN "+sql)
}

func explainAnalyze(t *testing.T, b *testBundle, sql string) string {
	t.Helper()
	return queryPlan(t, b, "EXPLAIN (ANALYZE, BUFFERS) "+sql)
}

func queryPlan(t *testing.T, b *testBundle, sql string) string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), sql)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}

// sampleValue reads one sample's value from a text exposition.
func sampleValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("%s not in exposition", series)
	return 0
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
