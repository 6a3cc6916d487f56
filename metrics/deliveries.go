package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	deliveriesUnfinishedDesc = prometheus.NewDesc("boohpay_webhook_deliveries_unfinished",
		"Rows of the webhook_deliveries ledger not yet SUCCEEDED or FAILED, by status, read at scrape time.",
		[]string{"status"}, nil)
	deliveriesUpDesc = collectorUpDesc("webhook_deliveries")
)

// deliveryStatusesUnfinished are the ledger's non-terminal statuses, as the
// table spells them.
var deliveryStatusesUnfinished = []string{"PENDING", "PROCESSING"}

// deliveriesSQL reads only the sweep's partial index
// (webhook_deliveries_sweep_idx, WHERE status IN ('PENDING','PROCESSING')),
// so delivered history costs nothing.
const deliveriesSQL = `SELECT status, count(*) FROM webhook_deliveries
	WHERE status IN ('PENDING', 'PROCESSING') GROUP BY status`

// deliveryCollector is boohpay_webhook_deliveries_unfinished{status}.
type deliveryCollector struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	log     *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deliveriesUnfinishedDesc
	ch <- deliveriesUpDesc
}

// Collect implements prometheus.Collector.
func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading webhook_deliveries", "error", err)
		ch <- prometheus.MustNewConstMetric(deliveriesUpDesc, prometheus.GaugeValue, 0)
		return
	}
	for _, s := range deliveryStatusesUnfinished {
		ch <- prometheus.MustNewConstMetric(deliveriesUnfinishedDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
	ch <- prometheus.MustNewConstMetric(deliveriesUpDesc, prometheus.GaugeValue, 1)
}

func (c *deliveryCollector) read() (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.pool.Query(ctx, deliveriesSQL)
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
