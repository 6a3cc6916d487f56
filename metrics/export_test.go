package metrics

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// For the tests of package metrics_test.
const (
	QueueSQL      = queueSQL
	DeliveriesSQL = deliveriesSQL
)

func NewQueueCollector(pool *pgxpool.Pool) prometheus.Collector {
	return &queueCollector{pool: pool, queues: []string{"default"}, timeout: time.Second, log: discardLogger}
}
