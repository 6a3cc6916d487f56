package metrics

import (
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

// newReviewCollector is boohpay_objects_in_review{object}.
func newReviewCollector(pool *pgxpool.Pool, timeout time.Duration, log *slog.Logger) *countCollector {
	return &countCollector{name: "objects in review", desc: inReviewDesc, up: inReviewUpDesc,
		values: db.Objects, sql: inReviewSQL, pool: pool, timeout: timeout, log: log}
}
