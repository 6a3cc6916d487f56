package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	queueSizeDesc = prometheus.NewDesc("queue_size",
		"River jobs not yet finalized, by queue and state, read from river_job at scrape time.",
		[]string{"queue", "state"}, nil)
	queueOldestDesc = prometheus.NewDesc("boohpay_queue_oldest_available_age_seconds",
		"Age of the oldest available (due, unstarted) River job by queue; 0 when none waits.",
		[]string{"queue"}, nil)
	queueUpDesc = collectorUpDesc("queue")
)

// collectorUpDesc is boohpay_collector_up for one scrape-time collector:
// 1 when its last query worked, 0 when it failed (its other series are then
// missing from that scrape, and the scrape itself still succeeds).
func collectorUpDesc(collector string) *prometheus.Desc {
	return prometheus.NewDesc("boohpay_collector_up",
		"1 if the scrape-time collector's query succeeded, 0 if it failed or timed out.",
		nil, prometheus.Labels{"collector": collector})
}

// queueStates are River's states before finalization (completed, cancelled
// and discarded jobs are history, not queue).
var queueStates = []string{"available", "pending", "retryable", "running", "scheduled"}

// queueSQL counts the unfinished jobs. Its WHERE on state lets Postgres read
// only the matching part of River's river_job_prioritized_fetching_index
// (state, queue, priority, scheduled_at, id), so finished jobs, however many,
// cost nothing.
const queueSQL = `SELECT queue, state::text, count(*),
		COALESCE(EXTRACT(EPOCH FROM now() - min(scheduled_at) FILTER (WHERE state = 'available' AND scheduled_at <= now())), 0)
	FROM river_job
	WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
	GROUP BY queue, state`

// queueCollector is queue_size{queue,state}: River's river_job read at
// scrape time.
type queueCollector struct {
	pool    *pgxpool.Pool
	queues  []string
	timeout time.Duration
	log     *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueSizeDesc
	ch <- queueOldestDesc
	ch <- queueUpDesc
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	sizes, oldest, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading river_job", "error", err)
		ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 0)
		return
	}
	for queue, byState := range sizes {
		for state, n := range byState {
			ch <- prometheus.MustNewConstMetric(queueSizeDesc, prometheus.GaugeValue, float64(n), queue, state)
		}
		ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, oldest[queue], queue)
	}
	ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 1)
}

// read returns the job count by queue and state, every known queue and state
// present (0 when empty), and the oldest available job's age by queue.
func (c *queueCollector) read() (map[string]map[string]int64, map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	sizes := map[string]map[string]int64{}
	oldest := map[string]float64{}
	addQueue := func(q string) {
		if sizes[q] == nil {
			sizes[q] = map[string]int64{}
			for _, s := range queueStates {
				sizes[q][s] = 0
			}
			oldest[q] = 0
		}
	}
	for _, q := range c.queues {
		addQueue(q)
	}
	rows, err := c.pool.Query(ctx, queueSQL)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var queue, state string
		var n int64
		var age float64
		if err := rows.Scan(&queue, &state, &n, &age); err != nil {
			return nil, nil, err
		}
		addQueue(queue)
		sizes[queue][state] = n
		if state == "available" {
			oldest[queue] = age
		}
	}
	return sizes, oldest, rows.Err()
}
