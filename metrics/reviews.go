package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/boohpay/boohpay/db"
)

var (
	inReviewDesc = prometheus.NewDesc("boohpay_objects_in_review",
		"Payments and payouts whose review is set (a provider told us something a human must look at), by object, read at scrape time.",
		[]string{"object"}, nil)
	inReviewUpDesc = collectorUpDesc("objects_in_review")
)

// inReviewSQL reads the small partial indexes on review IS NOT NULL.
const inReviewSQL = `SELECT 'payment', count(*) FROM payments WHERE review IS NOT NULL
	UNION ALL SELECT 'payout', count(*) FROM payouts WHERE review IS NOT NULL`

// reviewCollector is boohpay_objects_in_review{object}: read from the
// tables at each scrape, so it is exact whichever process set or cleared a
// review.
type reviewCollector struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	log     *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *reviewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inReviewDesc
	ch <- inReviewUpDesc
}

// Collect implements prometheus.Collector.
func (c *reviewCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading objects in review", "error", err)
		ch <- prometheus.MustNewConstMetric(inReviewUpDesc, prometheus.GaugeValue, 0)
		return
	}
	for _, o := range db.Objects {
		ch <- prometheus.MustNewConstMetric(inReviewDesc, prometheus.GaugeValue, float64(counts[o]), o)
	}
	ch <- prometheus.MustNewConstMetric(inReviewUpDesc, prometheus.GaugeValue, 1)
}

func (c *reviewCollector) read() (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.pool.Query(ctx, inReviewSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var object string
		var n int64
		if err := rows.Scan(&object, &n); err != nil {
			return nil, err
		}
		counts[object] = n
	}
	return counts, rows.Err()
}
