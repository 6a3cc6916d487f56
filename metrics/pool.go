package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolMetric is one pgxpool statistic.
type poolMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

func newPoolMetric(name, help string, typ prometheus.ValueType, value func(*pgxpool.Stat) float64) poolMetric {
	return poolMetric{prometheus.NewDesc("boohpay_pgxpool_"+name, help, nil, nil), typ, value}
}

var poolMetrics = []poolMetric{
	newPoolMetric("acquired_conns", "Connections currently acquired from the pool.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
	newPoolMetric("idle_conns", "Idle connections in the pool.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
	newPoolMetric("constructing_conns", "Connections being opened.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) }),
	newPoolMetric("total_conns", "Connections in the pool (acquired, idle and constructing).", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
	newPoolMetric("max_conns", "The pool's maximum size.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
	newPoolMetric("acquires_total", "Successful acquires from the pool.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
	newPoolMetric("acquire_duration_seconds_total", "Time spent in successful acquires.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
	newPoolMetric("empty_acquires_total", "Acquires that had to wait because no idle connection was ready.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
	newPoolMetric("empty_acquire_wait_seconds_total", "Time acquires spent waiting for a connection.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
	newPoolMetric("canceled_acquires_total", "Acquires cancelled by their context.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
	newPoolMetric("new_conns_total", "Connections opened.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
	newPoolMetric("max_lifetime_destroys_total", "Connections closed for reaching their maximum lifetime.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) }),
	newPoolMetric("max_idle_destroys_total", "Connections closed for idling too long.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) }),
}

// poolCollector exposes the pgxpool statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

// Describe implements prometheus.Collector.
func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range poolMetrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	stat := c.pool.Stat()
	for _, m := range poolMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(stat))
	}
}
