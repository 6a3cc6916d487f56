package metrics

import (
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

// newEndpointCollector is boohpay_webhook_endpoints{status}.
func newEndpointCollector(pool *pgxpool.Pool, timeout time.Duration, log *slog.Logger) *countCollector {
	return &countCollector{name: "webhook_endpoints", desc: endpointsDesc, up: endpointsUpDesc,
		values: endpointStatuses, sql: endpointsSQL, pool: pool, timeout: timeout, log: log}
}
