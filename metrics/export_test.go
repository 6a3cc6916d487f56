package metrics

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// For the tests of package metrics_test.
const (
	QueueSQL      = queueSQL
	DeliveriesSQL = deliveriesSQL
)

func NewQueueCollector(pool *pgxpool.Pool) prometheus.Collector {
	return &queueCollector{pool: pool, queues: []string{"default"}, timeout: time.Second, log: discardLogger}
}

// RiverEvent feeds one River event as the subscription would.
func (m *Metrics) RiverEvent(e *river.Event) { m.riverEvent(e) }
