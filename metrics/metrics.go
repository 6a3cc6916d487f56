// Package metrics owns what BoohPay tells Prometheus: every promised metric
// (metricstest.Promised) on the service's own registry, the collectors that read Postgres at scrape
// time (River's queue, the delivery ledger, the pool), and River's job events.
// Its bounded label values come from db's vocabularies (db/vocab.go), the
// one home of gateways, providers, statuses and outcomes; db itself reports
// to it through its Observer interface, never by importing it.
//
// The recording methods are safe on a nil *Metrics (they do nothing), so code
// under test can run without a registry.
package metrics

import (
	"cmp"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
)

// Config is what the scrape-time collectors need.
type Config struct {
	// Pool is the database the collectors read; nil leaves them out.
	Pool *pgxpool.Pool
	// Queues are River queues reported even while they hold no job, so that
	// their series exist at 0 rather than vanish; River's default queue
	// always is.
	Queues []string
	// QueryTimeout bounds each scrape-time query.
	QueryTimeout time.Duration
	// Logger hears why a scrape-time query failed (the scrape shows only
	// boohpay_collector_up 0); nil discards.
	Logger *slog.Logger
}

const queryTimeoutDefault = time.Second

var discardLogger = slog.New(slog.DiscardHandler)

// Metrics holds every metric the service records as things happen.
type Metrics struct {
	reg *prometheus.Registry

	httpDuration *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpErrors   *prometheus.CounterVec
	activeConns  prometheus.Gauge

	payments          *prometheus.CounterVec
	paymentsByGateway *prometheus.CounterVec
	paymentsByStatus  *prometheus.CounterVec
	paymentAmount     *prometheus.HistogramVec
	payouts           *prometheus.CounterVec
	payoutsByStatus   *prometheus.CounterVec

	webhooksReceived *prometheus.CounterVec
	deliveries       *prometheus.CounterVec
	deliveryErrors   *prometheus.CounterVec
	deliveryDuration *prometheus.HistogramVec

	// receivedTypes bound webhooks_received_total{type} per provider: the
	// event types each provider maps (WebhookProvider); any other is "other".
	receivedTypes map[string][]string

	jobsWorked   *prometheus.CounterVec
	jobQueueWait *prometheus.HistogramVec
	jobRun       *prometheus.HistogramVec
}

// The bounded label values. Callers pass these; anything else is folded into
// a catch-all so that no caller can grow a label without bound.
var (
	gateways        = db.Gateways
	providers       = append(append([]string{}, db.PayoutProviders...), db.PayoutProvidersRetired...)
	paymentStatuses = db.PaymentStatuses
	payoutStatuses  = db.PayoutStatuses
)

// Outcomes of one delivery attempt: webhook_deliveries_total{status}.
const (
	DeliverySucceeded = "succeeded" // 2xx
	DeliveryRetrying  = "retrying"  // failed, another attempt is scheduled (a fast retry or a recovery attempt)
	DeliveryFailed    = "failed"    // failed, no attempt left: the delivery is FAILED for good
	DeliveryRecovered = "recovered" // a recovery attempt (after the fast cycle failed) succeeded
)

// Why an attempt failed: webhook_delivery_errors_total{reason}.
const (
	ReasonHTTPStatus = "http_status" // the receiver answered non-2xx (3xx is ReasonRedirect)
	ReasonTimeout    = "timeout"     // no response within WEBHOOK_TIMEOUT
	ReasonConnection = "connection"  // DNS, refused, reset, TLS
	ReasonRedirect   = "redirect"    // 3xx: redirects are not followed
	ReasonBlocked    = "blocked"     // the URL resolves to a refused (private) address
)

// Results of a provider webhook besides the outcomes db decides
// (db.ProviderEventOutcomes): webhooks_received_total{result}.
const (
	ReceivedInvalidSignature = "invalid_signature" // 401: not the provider
	ReceivedError            = "error"             // refused (malformed, 503) or failed: the provider retries
)

var (
	deliveryStatuses = []string{DeliverySucceeded, DeliveryRetrying, DeliveryFailed, DeliveryRecovered}
	deliveryReasons  = []string{ReasonHTTPStatus, ReasonTimeout, ReasonConnection, ReasonRedirect, ReasonBlocked}
	receivedResults  = append(append([]string{}, db.ProviderEventOutcomes...), ReceivedInvalidSignature, ReceivedError)
)

const (
	other       = "other"   // a value outside a label's bounded set
	typeUnknown = "unknown" // a provider call whose event type could not be read
)

// New registers every metric and collector on reg, the service's own
// registry, and returns the Metrics to record with. It panics if reg already
// holds them: one Metrics per registry.
func New(reg *prometheus.Registry, cfg Config) *Metrics {
	m := &Metrics{
		reg:           reg,
		receivedTypes: map[string][]string{},
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by method, route template and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		httpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_request_errors_total",
			Help: "HTTP requests answered with a status of 400 or more.",
		}, []string{"method", "route", "status"}),
		activeConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "active_connections",
			Help: "Open HTTP connections.",
		}),

		payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_total",
			Help: "Committed payment statuses: each creation (PENDING) and each transition, by gateway and new status.",
		}, []string{"gateway", "status"}),
		paymentsByGateway: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_by_gateway_total",
			Help: "Payments created, by gateway.",
		}, []string{"gateway"}),
		paymentsByStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_by_status_total",
			Help: "Committed payment statuses (creation and transitions), by new status.",
		}, []string{"status"}),
		paymentAmount: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payment_amount",
			Help:    "Amount of each payment created, in the currency's minor unit.",
			Buckets: []float64{100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1e6, 5e6, 1e7},
		}, []string{"gateway", "currency"}),
		payouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payouts_total",
			Help: "Committed payout statuses: each creation (PENDING) and each transition, by provider and new status.",
		}, []string{"provider", "status"}),
		payoutsByStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payouts_by_status_total",
			Help: "Committed payout statuses (creation and transitions), by new status.",
		}, []string{"status"}),

		webhooksReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhooks_received_total",
			Help: "Provider webhooks received, by provider, event type and result.",
		}, []string{"provider", "type", "result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_deliveries_total",
			Help: "Outbound webhook delivery attempts, by outcome: succeeded, retrying (failed, will retry), failed (failed, no retry left).",
		}, []string{"status"}),
		deliveryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_delivery_errors_total",
			Help: "Failed outbound webhook delivery attempts, by reason.",
		}, []string{"reason"}),
		deliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "webhook_delivery_duration_seconds",
			Help:    "Duration of each outbound webhook delivery attempt, by outcome.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"status"}),

		jobsWorked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boohpay_river_jobs_worked_total",
			Help: "River jobs worked by this process, by queue, kind and outcome (completed, retryable, discarded, cancelled, snoozed, interrupted).",
		}, []string{"queue", "kind", "outcome"}),
		jobQueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "boohpay_river_job_queue_wait_seconds",
			Help:    "Time River jobs spent available before a worker started them.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"queue", "kind"}),
		jobRun: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "boohpay_river_job_run_duration_seconds",
			Help:    "Time River jobs spent in their worker.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"queue", "kind"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpDuration, m.httpRequests, m.httpErrors, m.activeConns,
		m.payments, m.paymentsByGateway, m.paymentsByStatus, m.paymentAmount, m.payouts, m.payoutsByStatus,
		m.webhooksReceived, m.deliveries, m.deliveryErrors, m.deliveryDuration,
		m.jobsWorked, m.jobQueueWait, m.jobRun,
	)
	if cfg.Pool != nil {
		timeout := cmp.Or(cfg.QueryTimeout, queryTimeoutDefault)
		log := cfg.Logger
		if log == nil {
			log = discardLogger
		}
		queues := append([]string{river.QueueDefault}, cfg.Queues...)
		reg.MustRegister(
			&queueCollector{pool: cfg.Pool, queues: queues, timeout: timeout, log: log},
			newDeliveryCollector(cfg.Pool, timeout, log),
			newEndpointCollector(cfg.Pool, timeout, log),
			newReviewCollector(cfg.Pool, timeout, log),
			poolCollector{pool: cfg.Pool},
		)
	}
	m.initSeries()
	return m
}

// initSeries creates the series of every bounded label set at 0, so that
// rate() and alerts see a counter from the start rather than from its first
// increment.
func (m *Metrics) initSeries() {
	for _, g := range gateways {
		m.paymentsByGateway.WithLabelValues(g)
		for _, s := range paymentStatuses {
			m.payments.WithLabelValues(g, s)
		}
	}
	for _, s := range paymentStatuses {
		m.paymentsByStatus.WithLabelValues(s)
	}
	for _, p := range providers {
		for _, s := range payoutStatuses {
			m.payouts.WithLabelValues(p, s)
		}
	}
	for _, s := range payoutStatuses {
		m.payoutsByStatus.WithLabelValues(s)
	}
	for _, s := range deliveryStatuses {
		m.deliveries.WithLabelValues(s)
		m.deliveryDuration.WithLabelValues(s)
	}
	for _, r := range deliveryReasons {
		m.deliveryErrors.WithLabelValues(r)
	}
	for _, g := range gateways {
		for _, c := range homeCurrencies {
			m.paymentAmount.WithLabelValues(g, c)
		}
	}
	// webhooks_received_total's series: WebhookProvider, per provider.
}

// homeCurrencies are the currencies payment_amount starts with at zero: the
// service's home markets' (FCFA); another currency's series appears with its
// first payment.
var homeCurrencies = []string{"XAF", "XOF"}

// initStatuses are the statuses each route's HTTP series start with at zero:
// success, and the errors alerts watch.
var initStatuses = []int{200, 400, 401, 404, 429, 500, 503}

// InitRoutes creates the HTTP series of each route (method and template) at
// zero, so that error rates and latency exist before the first request;
// api.NewServer calls it with every route it serves.
func (m *Metrics) InitRoutes(routes [][2]string) {
	if m == nil {
		return
	}
	for _, r := range routes {
		method := oneOf(r[0], httpMethods)
		for _, status := range initStatuses {
			code := strconv.Itoa(status)
			m.httpRequests.WithLabelValues(method, r[1], code)
			if status >= 400 {
				m.httpErrors.WithLabelValues(method, r[1], code)
			}
		}
		m.httpDuration.WithLabelValues(method, r[1], "200")
	}
}

// PaymentCommitted records a payment status that is now committed: a new
// payment (created, status PENDING) or a transition to status. db's Store
// calls it after the commit, never for a rolled-back transaction.
func (m *Metrics) PaymentCommitted(gateway, status, currency string, amount int64, created bool) {
	if m == nil {
		return
	}
	gateway, status = oneOf(gateway, gateways), oneOf(status, paymentStatuses)
	m.payments.WithLabelValues(gateway, status).Inc()
	m.paymentsByStatus.WithLabelValues(status).Inc()
	if created {
		m.paymentsByGateway.WithLabelValues(gateway).Inc()
		m.paymentAmount.WithLabelValues(gateway, currencyLabel(currency)).Observe(float64(amount))
	}
}

// PayoutCommitted records a payout status that is now committed (PENDING
// for a new payout); see PaymentCommitted.
func (m *Metrics) PayoutCommitted(provider, status string) {
	if m == nil {
		return
	}
	provider, status = oneOf(provider, providers), oneOf(status, payoutStatuses)
	m.payouts.WithLabelValues(provider, status).Inc()
	m.payoutsByStatus.WithLabelValues(status).Inc()
}

// WebhookProvider declares an inbound provider and the event types it
// maps, and creates its webhooks_received_total series at 0 for each type
// (and "other", "unknown") and result. Call it once per provider at start.
func (m *Metrics) WebhookProvider(provider string, types []string) {
	if m == nil {
		return
	}
	m.receivedTypes[provider] = types
	for _, typ := range append(append([]string{}, types...), other, typeUnknown) {
		for _, r := range receivedResults {
			m.webhooksReceived.WithLabelValues(provider, typ, r)
		}
	}
}

// WebhookReceived records one provider webhook: provider one declared by
// WebhookProvider; typ the provider's event type (for eBilling, whose
// callback has none, "payment.paid"), or "unknown" when the call could not
// be read; result an outcome (db.Outcome*) or a Received* constant. Types
// the provider does not map count as "other": an unsigned caller can claim
// any type.
func (m *Metrics) WebhookReceived(provider, typ, result string) {
	if m == nil {
		return
	}
	types, ok := m.receivedTypes[provider]
	if !ok {
		provider = other
	}
	if typ != typeUnknown {
		typ = oneOf(typ, types)
	}
	m.webhooksReceived.WithLabelValues(provider, typ, oneOf(result, receivedResults)).Inc()
}

// DeliveryAttempt records one outbound delivery attempt: status is one of
// the Delivery* constants, reason one of the Reason* constants when the
// attempt failed ("" when it succeeded), d the attempt's duration.
func (m *Metrics) DeliveryAttempt(status, reason string, d time.Duration) {
	if m == nil {
		return
	}
	status = oneOf(status, deliveryStatuses)
	m.deliveries.WithLabelValues(status).Inc()
	m.deliveryDuration.WithLabelValues(status).Observe(d.Seconds())
	if status != DeliverySucceeded {
		m.deliveryErrors.WithLabelValues(oneOf(reason, deliveryReasons)).Inc()
	}
}

// oneOf returns v if it is in set, else "other".
func oneOf(v string, set []string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return other
}

// currencyLabel keeps a currency label to the shape of an ISO 4217 code; the
// API has already checked it against its list.
func currencyLabel(c string) string {
	if len(c) != 3 {
		return other
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return other
		}
	}
	return c
}
