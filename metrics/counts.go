package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// countCollector is a gauge with one bounded label, read from Postgres at
// scrape time: its query returns (label value, count) rows, every known
// value is exposed (0 when the query has no row for it), and
// boohpay_collector_up{collector=name} says whether the query answered
// within timeout. Reading at scrape time keeps the gauge exact whichever
// process changed the rows.
type countCollector struct {
	name   string
	desc   *prometheus.Desc
	up     *prometheus.Desc
	values []string // the label's known values
	sql    string

	pool    *pgxpool.Pool
	timeout time.Duration
	log     *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *countCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading "+c.name, "error", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	for _, v := range c.values {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[v]), v)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
}

func (c *countCollector) read() (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.pool.Query(ctx, c.sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var value string
		var n int64
		if err := rows.Scan(&value, &n); err != nil {
			return nil, err
		}
		counts[value] = n
	}
	return counts, rows.Err()
}
