package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/jobs"
	"github.com/boohpay/boohpay/metrics"
	"github.com/boohpay/boohpay/metrics/metricstest"
)

const (
	metricsToken       = "scrape-token"
	metricsStripeToken = "whsec_metrics_test"
)

// metricsBundle is the whole service in-process, as serve wires it: one
// registry, the store's after-commit observer, the HTTP middleware, River
// workers delivering to a local receiver.
type metricsBundle struct {
	e      *echo.Echo
	reg    *prometheus.Registry
	store  *db.Store
	apiKey string
	hits   atomic.Int64
}

func setupMetrics(t *testing.T) *metricsBundle {
	t.Helper()
	ctx := context.Background()
	b := &metricsBundle{store: dbtest.Store(t), reg: prometheus.NewPedanticRegistry()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New(b.reg, metrics.Config{Pool: b.store.Pool, Queues: []string{db.DeliveryQueue}})
	b.store.SetObserver(m)

	// The receiver refuses the very first delivery attempt, so one is retried.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	client, err := jobs.NewClient(b.store, log, jobs.Config{
		AllowPrivateNetworks: true, RetryBaseDelay: 10 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond, Metrics: m,
	})
	require.NoError(t, err)
	stop := m.SubscribeRiver(client)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
		stop()
	})

	nm, err := b.store.MerchantCreate(ctx, "Metrics", receiver.URL)
	require.NoError(t, err)
	b.apiKey = nm.APIKey
	b.e = api.NewServer(api.Config{MetricsToken: metricsToken, ProviderSecrets: map[string]string{"stripe": metricsStripeToken}}, log, b.store, m)
	return b
}

func (b *metricsBundle) do(t *testing.T, method, path string, body any, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, req)
	return rec
}

func (b *metricsBundle) merchant(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	rec := b.do(t, method, path, body, "Authorization", "Bearer "+b.apiKey)
	require.Less(t, rec.Code, 300, "%s %s: %s", method, path, rec.Body)
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

func (b *metricsBundle) scrape(t *testing.T) []byte {
	t.Helper()
	rec := b.do(t, http.MethodGet, "/metrics", nil, "Authorization", "Bearer "+metricsToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.Bytes()
}

// TestMetricsAfterAScriptedFlow drives payments, payouts, a provider webhook
// and deliveries (one retried) through the API, then checks the exposition:
// every promised metric with its exact labels, the counts the flow implies,
// route templates only, no id anywhere, promtool clean.
func TestMetricsAfterAScriptedFlow(t *testing.T) {
	t.Parallel()
	b := setupMetrics(t)

	paid := b.merchant(t, "POST", "/v1/payments", map[string]any{"amount": 5000, "currency": "XAF", "gateway": "sandbox"})
	b.merchant(t, "POST", "/v1/payments/"+paid["id"].(string)+"/simulate", map[string]any{"status": "SUCCEEDED"})
	failed := b.merchant(t, "POST", "/v1/payments", map[string]any{"amount": 250000, "currency": "XOF", "gateway": "sandbox"})
	b.merchant(t, "POST", "/v1/payments/"+failed["id"].(string)+"/simulate", map[string]any{"status": "FAILED", "failure_reason": "declined"})
	payout := b.merchant(t, "POST", "/v1/payouts", map[string]any{"amount": 1000, "currency": "XAF", "provider": "sandbox",
		"recipient": map[string]any{"phone": "+241000000"}})
	b.merchant(t, "POST", "/v1/payouts/"+payout["id"].(string)+"/simulate", map[string]any{"status": "SUCCEEDED"})

	// An illegal move is refused and rolled back: it counts nothing.
	rec := b.do(t, "POST", "/v1/payments/"+paid["id"].(string)+"/simulate", map[string]any{"status": "PENDING"},
		"Authorization", "Bearer "+b.apiKey)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())

	// Ids in paths: a matched route is labelled by its template, anything
	// else shares "unmatched".
	for _, path := range []string{"/v1/payments/" + uuid.NewString(), "/v1/" + uuid.NewString(), "/wp-admin/" + uuid.NewString()} {
		require.Equal(t, http.StatusNotFound, b.do(t, "GET", path, nil, "Authorization", "Bearer "+b.apiKey).Code, path)
	}

	// Provider webhooks: one authentic, which succeeds a Stripe payment, one forged.
	viaStripe := b.merchant(t, "POST", "/v1/payments", map[string]any{"amount": 1500, "currency": "EUR", "gateway": "stripe"})
	event := []byte(fmt.Sprintf(`{"id":"evt_%d","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","metadata":{"boohpay_payment_id":%q}}}}`,
		time.Now().UnixNano(), viaStripe["id"]))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(metricsStripeToken))
	mac.Write([]byte(ts + "." + string(event)))
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/v1/webhooks/stripe", event,
		"Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil))).Code)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/v1/webhooks/stripe", event,
		"Stripe-Signature", "t="+ts+",v1=00").Code)

	// Eight events (pending and an outcome for each of three payments and
	// the payout) reach the receiver; the first attempt fails and is retried.
	require.Eventually(t, func() bool {
		return bytes.Contains(b.scrape(t), []byte(`webhook_deliveries_total{status="succeeded"} 8`+"\n"))
	}, 20*time.Second, 50*time.Millisecond, "8 deliveries did not succeed")

	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/metrics", nil).Code, "METRICS_TOKEN is required when set")
	text := b.scrape(t)
	families := metricstest.Parse(t, text)
	metricstest.RequirePromised(t, families)
	metricstest.RequireNoIDLabels(t, families)
	metricstest.Promtool(t, text)
	_, err := b.reg.Gather()
	require.NoError(t, err, "pedantic registry")

	for _, line := range []string{
		`payments_total{gateway="sandbox",status="PENDING"} 2`,
		`payments_total{gateway="sandbox",status="SUCCEEDED"} 1`,
		`payments_total{gateway="sandbox",status="FAILED"} 1`,
		`payments_by_gateway_total{gateway="sandbox"} 2`,
		`payments_total{gateway="stripe",status="PENDING"} 1`,
		`payments_total{gateway="stripe",status="SUCCEEDED"} 1`,
		`payments_by_status_total{status="SUCCEEDED"} 2`,
		`payment_amount_sum{currency="EUR",gateway="stripe"} 1500`,
		`payment_amount_count{currency="XOF",gateway="sandbox"} 1`,
		`payouts_total{provider="sandbox",status="SUCCEEDED"} 1`,
		`payouts_by_status_total{status="PENDING"} 1`,
		`webhooks_received_total{provider="stripe",result="applied",type="payment_intent.succeeded"} 1`,
		`webhooks_received_total{provider="stripe",result="invalid_signature",type="unknown"} 1`,
		`webhook_deliveries_total{status="retrying"} 1`,
		`webhook_delivery_errors_total{reason="http_status"} 1`,
		`webhook_delivery_duration_seconds_count{status="succeeded"} 8`,
		`http_requests_total{method="POST",route="/v1/payments/:id/simulate",status="409"} 1`,
		`http_requests_total{method="GET",route="/v1/payments/:id",status="404"} 1`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 2`,
		`http_request_errors_total{method="POST",route="/v1/webhooks/stripe",status="401"} 1`,
		`boohpay_collector_up{collector="queue"} 1`,
		`queue_size{queue="` + db.DeliveryQueue + `",state="available"} 0`,
		`boohpay_river_jobs_worked_total{kind="webhook_delivery",outcome="retryable",queue="` + db.DeliveryQueue + `"} 1`,
	} {
		if !bytes.Contains(text, []byte(line+"\n")) {
			t.Errorf("missing from the exposition: %s", line)
		}
	}

	// Route labels are templates only.
	routes := map[string]bool{"unmatched": true}
	for _, r := range b.e.Routes() {
		routes[r.Path] = true
	}
	for _, m := range families["http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				require.True(t, routes[l.GetValue()], "route label %q is not a route template", l.GetValue())
			}
		}
	}
}

func TestTwoServersInOneProcess(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var servers []*echo.Echo
	for range 2 {
		m := metrics.New(prometheus.NewRegistry(), metrics.Config{Pool: store.Pool})
		servers = append(servers, api.NewServer(api.Config{}, log, store, m))
	}
	for _, e := range servers {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Contains(t, rec.Body.String(), "queue_size{")
	}
}
