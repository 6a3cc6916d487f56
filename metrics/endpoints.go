package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	endpointsDesc = prometheus.NewDesc("boohpay_webhook_endpoints",
		"Merchants' webhook endpoints by status, read at scrape time: enabled, failing (enabled, every attempt failing since failing_since), disabled_merchant, disabled_failing (disabled after WEBHOOK_DISABLE_AFTER of failures).",
		[]string{"status"}, nil)
	endpointsUpDesc = collectorUpDesc("webhook_endpoints")
)

// endpointStatuses are boohpay_webhook_endpoints' status label values.
var endpointStatuses = []string{"enabled", "failing", "disabled_merchant", "disabled_failing"}

// endpointsSQL reads the endpoints table: at most 16 rows per merchant.
const endpointsSQL = `SELECT CASE
		WHEN status = 'disabled' THEN 'disabled_' || disabled_reason
		WHEN failing_since IS NOT NULL THEN 'failing'
		ELSE 'enabled' END, count(*)
	FROM webhook_endpoints WHERE deleted_at IS NULL GROUP BY 1`

// endpointCollector is boohpay_webhook_endpoints{status}.
type endpointCollector struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	log     *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *endpointCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- endpointsDesc
	ch <- endpointsUpDesc
}

// Collect implements prometheus.Collector.
func (c *endpointCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading webhook_endpoints", "error", err)
		ch <- prometheus.MustNewConstMetric(endpointsUpDesc, prometheus.GaugeValue, 0)
		return
	}
	for _, s := range endpointStatuses {
		ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
	ch <- prometheus.MustNewConstMetric(endpointsUpDesc, prometheus.GaugeValue, 1)
}

func (c *endpointCollector) read() (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.pool.Query(ctx, endpointsSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, err
		}
		counts[status] = n
	}
	return counts, rows.Err()
}
