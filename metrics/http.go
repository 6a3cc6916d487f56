package metrics

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the registry in Prometheus' text format (GET /metrics). A
// collector that fails still lets the others through; the scrape-time
// collectors report their own failures as boohpay_collector_up 0. A nil
// Metrics serves 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total
	})
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// HTTPRequest records one answered request. route is the route template
// ("/v1/payments/:id"), never the raw path; the caller folds unknown paths
// into one value.
func (m *Metrics) HTTPRequest(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	method = oneOf(method, httpMethods)
	code := strconv.Itoa(status)
	m.httpDuration.WithLabelValues(method, route, code).Observe(d.Seconds())
	m.httpRequests.WithLabelValues(method, route, code).Inc()
	if status >= 400 {
		m.httpErrors.WithLabelValues(method, route, code).Inc()
	}
}

// ConnState is the http.Server's ConnState hook: it keeps
// active_connections. Each connection starts New and ends, once, either
// Closed or Hijacked.
func (m *Metrics) ConnState(_ net.Conn, state http.ConnState) {
	if m == nil {
		return
	}
	switch state {
	case http.StateNew:
		m.activeConns.Inc()
	case http.StateClosed, http.StateHijacked:
		m.activeConns.Dec()
	}
}
