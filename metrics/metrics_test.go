package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/metrics"
	"github.com/boohpay/boohpay/metrics/metricstest"
)

type testBundle struct {
	reg  *prometheus.Registry
	m    *metrics.Metrics
	pool *pgxpool.Pool
}

// setup builds Metrics on a pedantic registry (which checks every
// collector's Describe against its Collect) over a fresh database.
func setup(t *testing.T, cfg metrics.Config) *testBundle {
	t.Helper()
	if cfg.Pool == nil {
		cfg.Pool = dbtest.Pool(t)
	}
	reg := prometheus.NewPedanticRegistry()
	return &testBundle{reg: reg, m: metrics.New(reg, cfg), pool: cfg.Pool}
}

// scrape is GET /metrics on the bundle's handler.
func (b *testBundle) scrape(t *testing.T) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	b.m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.Bytes()
}

func TestExpositionIsPedanticCleanAndPassesPromtool(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	b.m.HTTPRequest("GET", "/v1/payments/:id", 200, 3*time.Millisecond)
	b.m.HTTPRequest("POST", "/v1/payments", 422, time.Millisecond)
	b.m.PaymentCommitted("sandbox", "PENDING", "XAF", 5000, true)
	b.m.PaymentCommitted("sandbox", "SUCCEEDED", "XAF", 5000, false)
	b.m.PayoutCommitted("moneroo", "PENDING")
	b.m.WebhookProvider("stripe", []string{"payment_intent.succeeded"})
	b.m.WebhookReceived("stripe", "payment_intent.succeeded", "applied")
	b.m.DeliveryAttempt(metrics.DeliveryRetrying, metrics.ReasonTimeout, 10*time.Second)
	b.m.DeliveryAttempt(metrics.DeliverySucceeded, "", 40*time.Millisecond)

	_, err := b.reg.Gather() // the pedantic checks
	require.NoError(t, err)
	text := b.scrape(t)
	families := metricstest.Parse(t, text)
	metricstest.RequirePromised(t, families)
	metricstest.RequireNoIDLabels(t, families)
	metricstest.Promtool(t, text)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "boohpay_pgxpool_total_conns",
		"boohpay_collector_up", "boohpay_webhook_deliveries_unfinished", "boohpay_queue_oldest_available_age_seconds"} {
		require.Contains(t, families, name)
	}
}

func TestTwoRegistriesInOneProcess(t *testing.T) {
	t.Parallel()
	a := metrics.New(prometheus.NewRegistry(), metrics.Config{})
	b := metrics.New(prometheus.NewRegistry(), metrics.Config{})
	a.PayoutCommitted("sandbox", "PENDING")
	ra, rb := httptest.NewRecorder(), httptest.NewRecorder()
	a.Handler().ServeHTTP(ra, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b.Handler().ServeHTTP(rb, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Contains(t, ra.Body.String(), `payouts_total{provider="sandbox",status="PENDING"} 1`)
	require.Contains(t, rb.Body.String(), `payouts_total{provider="sandbox",status="PENDING"} 0`)
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.PaymentCommitted("sandbox", "PENDING", "XAF", 1, true)
	m.PayoutCommitted("sandbox", "PENDING")
	m.WebhookReceived("stripe", "x", "ok")
	m.DeliveryAttempt(metrics.DeliveryFailed, metrics.ReasonBlocked, time.Second)
	m.HTTPRequest("GET", "/", 200, time.Second)
	m.ConnState(nil, http.StateNew)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestLabelsStayBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Config{})
	// Values from outside a label's set fold into "other": an unsigned
	// provider call can claim any type, and a bug must not mint series.
	m.WebhookProvider("stripe", []string{"payment_intent.succeeded"})
	m.WebhookProvider("moneroo", []string{"payment.success"})
	m.WebhookReceived("stripe", "customer.created", "applied")
	m.WebhookReceived("stripe", "0b6c3f4e-8c1d-4f7e-9a55-7d8e1f2a3b4c", metrics.ReceivedInvalidSignature)
	m.WebhookReceived("paypal", "payment.success", "weird")
	m.WebhookReceived("moneroo", "unknown", metrics.ReceivedInvalidSignature)
	m.HTTPRequest("BREW", "unmatched", 405, time.Millisecond)
	m.PaymentCommitted("sandbox", "PENDING", "not-a-currency", 1, true)

	text := scrapeText(t, m)
	require.Contains(t, text, `webhooks_received_total{provider="stripe",result="applied",type="other"} 1`)
	require.Contains(t, text, `webhooks_received_total{provider="stripe",result="invalid_signature",type="other"} 1`)
	require.Contains(t, text, `webhooks_received_total{provider="other",result="other",type="other"} 1`)
	require.Contains(t, text, `webhooks_received_total{provider="moneroo",result="invalid_signature",type="unknown"} 1`)
	require.Contains(t, text, `http_requests_total{method="other",route="unmatched",status="405"} 1`)
	require.Contains(t, text, `payment_amount_count{currency="other",gateway="sandbox"} 1`)
}

func TestPaymentAndDeliveryCounts(t *testing.T) {
	t.Parallel()
	m := metrics.New(prometheus.NewRegistry(), metrics.Config{})
	m.PaymentCommitted("moneroo", "PENDING", "XOF", 2500, true)
	m.PaymentCommitted("moneroo", "FAILED", "XOF", 2500, false)
	m.DeliveryAttempt(metrics.DeliveryRetrying, metrics.ReasonHTTPStatus, time.Second)
	m.DeliveryAttempt(metrics.DeliveryFailed, metrics.ReasonConnection, time.Second)
	m.DeliveryAttempt(metrics.DeliverySucceeded, "", time.Second)

	text := scrapeText(t, m)
	for _, line := range []string{
		`payments_total{gateway="moneroo",status="PENDING"} 1`,
		`payments_total{gateway="moneroo",status="FAILED"} 1`,
		`payments_by_gateway_total{gateway="moneroo"} 1`, // created once, whatever its transitions
		`payments_by_status_total{status="FAILED"} 1`,
		`payment_amount_sum{currency="XOF",gateway="moneroo"} 2500`,
		`payment_amount_count{currency="XOF",gateway="moneroo"} 1`,
		`webhook_deliveries_total{status="retrying"} 1`,
		`webhook_deliveries_total{status="failed"} 1`,
		`webhook_deliveries_total{status="succeeded"} 1`,
		`webhook_delivery_errors_total{reason="http_status"} 1`,
		`webhook_delivery_errors_total{reason="connection"} 1`,
		`webhook_delivery_errors_total{reason="timeout"} 0`,
		`webhook_delivery_duration_seconds_count{status="retrying"} 1`,
	} {
		require.Contains(t, text, line+"\n")
	}
}

func TestActiveConnectionsFollowTheServer(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Config{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = m.ConnState
	srv.Start()
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Get(srv.URL)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	require.Equal(t, 1.0, gaugeValue(t, reg, "active_connections"), "the kept-alive connection is open")

	client.CloseIdleConnections()
	require.Eventually(t, func() bool { return gaugeValue(t, reg, "active_connections") == 0 }, time.Minute, 10*time.Millisecond)
}

func scrapeText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// exec runs SQL on the bundle's database.
func (b *testBundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *testBundle) collectorUp(t *testing.T, collector string) float64 {
	t.Helper()
	text := b.scrape(t)
	for _, line := range strings.Split(string(text), "\n") {
		var v float64
		if _, err := fmt.Sscanf(line, `boohpay_collector_up{collector="`+collector+`"} %g`, &v); err == nil {
			return v
		}
	}
	t.Fatalf("no boohpay_collector_up for %s in:\n%s", collector, text)
	return 0
}
