package metrics

import (
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

// newDeliveryCollector is boohpay_webhook_deliveries_unfinished{status}.
func newDeliveryCollector(pool *pgxpool.Pool, timeout time.Duration, log *slog.Logger) *countCollector {
	return &countCollector{name: "webhook_deliveries", desc: deliveriesUnfinishedDesc, up: deliveriesUpDesc,
		values: deliveryStatusesUnfinished, sql: deliveriesSQL, pool: pool, timeout: timeout, log: log}
}
