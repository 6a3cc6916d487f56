package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/metrics"
)

const (
	testStripeSecret  = "whsec_dGVzdCBzZWNyZXQgZm9yIGJvb2hwYXkgdGVzdHM="
	testMonerooSecret = "moneroo_whs_4f9c2a7d1e"
	testEBillingToken = "ebl_cb_9QwX2mZr7LtK"
	testAdminToken    = "adm_providers_test_token"
)

// providerBundle is the whole API on a fresh database, every provider
// configured, one merchant with a webhook URL, and the logs kept.
type providerBundle struct {
	t        *testing.T
	e        *echo.Echo
	store    *db.Store
	merchant *db.Merchant
	key      string // the merchant's API key
	logs     *dbtest.Logs
}

var testProviderConfig = Config{
	ProviderSecrets: map[string]string{"stripe": testStripeSecret, "moneroo": testMonerooSecret, "ebilling": testEBillingToken},
	AdminToken:      testAdminToken,
}

func setupProviders(t *testing.T) *providerBundle {
	t.Helper()
	return setupProvidersWith(t, testProviderConfig, nil)
}

func setupProvidersWith(t *testing.T, cfg Config, m *metrics.Metrics) *providerBundle {
	t.Helper()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(context.Background(), "Provider Test", "https://merchant.example.com/hooks")
	require.NoError(t, err)
	logs := &dbtest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &providerBundle{t: t, e: NewServer(cfg, log, store, m), store: store, merchant: nm.Merchant, key: nm.APIKey, logs: logs}
}

// payment creates a PENDING XAF payment on gateway; ref is its
// provider_reference ("" for none).
func (b *providerBundle) payment(gateway string, amount int64, ref string) *db.Payment {
	b.t.Helper()
	return b.paymentIn(gateway, "XAF", amount, ref)
}

// payout creates a PENDING XAF payout on provider; ref is its provider_reference.
func (b *providerBundle) payout(provider string, amount int64, ref string) *db.Payout {
	b.t.Helper()
	phone := "+24166000000"
	params := db.PayoutCreateParams{MerchantID: b.merchant.ID, Amount: amount, Currency: "XAF", Provider: provider,
		Recipient: db.Recipient{Phone: &phone}}
	if ref != "" {
		params.ProviderReference = &ref
	}
	return dbtest.Payout(b.t, b.store, params)
}

// setPaymentStatus moves a payment through the one transition path.
func (b *providerBundle) setPaymentStatus(id uuid.UUID, status string) {
	b.t.Helper()
	_, _, err := b.store.PaymentTransition(context.Background(), db.TransitionParams{Actor: db.ActorAdmin, ID: id, Status: status})
	require.NoError(b.t, err)
}

func (b *providerBundle) paymentNow(id uuid.UUID) *db.Payment {
	b.t.Helper()
	p, err := b.store.PaymentGet(context.Background(), b.merchant.ID, id)
	require.NoError(b.t, err)
	return p
}

func (b *providerBundle) payoutNow(id uuid.UUID) *db.Payout {
	b.t.Helper()
	p, err := b.store.PayoutGet(context.Background(), b.merchant.ID, id)
	require.NoError(b.t, err)
	return p
}

// events counts the merchant events emitted for an object, of typ ("" for any).
func (b *providerBundle) events(objectID uuid.UUID, typ string) int {
	return b.count(`SELECT count(*) FROM events WHERE object_id = $1 AND ($2 = '' OR type = $2)`, objectID, typ)
}

func (b *providerBundle) count(query string, args ...any) int {
	b.t.Helper()
	return dbtest.Count(b.t, b.store.Pool, query, args...)
}

func (b *providerBundle) providerEvent(provider, key string) *db.ProviderEvent {
	b.t.Helper()
	rows, err := b.store.Pool.Query(context.Background(), `SELECT id, provider, event_key, event_type, object_type,
			object_id, object_ref, result, detail, payload, received_at
		FROM provider_events WHERE provider = $1 AND event_key = $2`, provider, key)
	require.NoError(b.t, err)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByName[db.ProviderEvent])
	require.NoError(b.t, err, "no provider_events row for %s %s", provider, key)
	return e
}

// post sends body to path; headers are name, value pairs.
func (b *providerBundle) post(path string, body []byte, headers ...string) *httptest.ResponseRecorder {
	b.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, req)
	return rec
}

// requireAnswer checks a 200 answer and its result.
func requireAnswer(t *testing.T, rec *httptest.ResponseRecorder, result string) {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	var a providerAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	require.Equal(t, providerAnswer{Received: true, Result: result}, a)
}

// requireError checks an error answer in the one error shape and returns its code.
func requireError(t *testing.T, rec *httptest.ResponseRecorder, status int) string {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body)
	var body struct {
		Error struct {
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "body: %s", rec.Body)
	require.NotEmpty(t, body.Error.Type)
	require.NotEmpty(t, body.Error.Code)
	require.NotEmpty(t, body.Error.Message)
	return body.Error.Code
}

// golden reads testdata/providers/name with each {{key}} replaced.
func golden(t testing.TB, name string, vars ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "providers", name))
	require.NoError(t, err)
	s := string(raw)
	for i := 0; i+1 < len(vars); i += 2 {
		s = strings.ReplaceAll(s, "{{"+vars[i]+"}}", vars[i+1])
	}
	require.NotContains(t, s, "{{", "unreplaced placeholder in %s", name)
	return []byte(s)
}

// concurrently runs fn n times at once and returns the answers.
func concurrently(n int, fn func() *httptest.ResponseRecorder) []*httptest.ResponseRecorder {
	recs := make([]*httptest.ResponseRecorder, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() {
			<-start
			recs[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	return recs
}

// requireOneApplied checks that of concurrent identical calls exactly one
// applied the event and every other one was answered as a duplicate.
func requireOneApplied(t *testing.T, recs []*httptest.ResponseRecorder) {
	t.Helper()
	results := map[string]int{}
	for _, rec := range recs {
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		var a providerAnswer
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
		results[a.Result]++
	}
	require.Equal(t, map[string]int{db.OutcomeApplied: 1, db.OutcomeDuplicate: len(recs) - 1}, results)
}

// TestProviderWebhooksUnconfigured: a provider whose secret is not set is
// refused with 503 and a clear error, whatever the call carries; nothing is
// written.
func TestProviderWebhooksUnconfigured(t *testing.T) {
	t.Parallel()
	b := setupProvidersWith(t, Config{}, nil)
	p := b.payment("stripe", 5000, "pi_3QPmY2Lkdi0aZb1x0unconf")

	body := golden(t, "stripe_payment_intent.succeeded.json", "event_id", "evt_unconfigured", "pi", "pi_3QPmY2Lkdi0aZb1x0unconf",
		"payment_id", p.ID.String())
	// Signed with the empty secret: still refused, never "accept unsigned".
	rec := b.post("/v1/webhooks/stripe", body, "Stripe-Signature", stripeHeader("", time.Now(), body))
	require.Equal(t, "service_unavailable", requireError(t, rec, http.StatusServiceUnavailable))
	require.Contains(t, rec.Body.String(), "STRIPE_WEBHOOK_SECRET")

	mbody := golden(t, "moneroo_payment.json", "event", "payment.success", "moneroo_id", "py_unconf", "status", "success",
		"metadata", `{}`)
	rec = b.post("/v1/webhooks/moneroo", mbody, "X-Moneroo-Signature", monerooSignature("", mbody))
	requireError(t, rec, http.StatusServiceUnavailable)
	require.Contains(t, rec.Body.String(), "MONEROO_WEBHOOK_SECRET")

	ebody := golden(t, "ebilling_callback.form", "billingid", "5550001", "transactionid", "TX1", "reference", p.ID.String(), "amount", "5000")
	rec = b.post("/v1/webhooks/ebilling?token=", ebody, "Content-Type", "application/x-www-form-urlencoded")
	requireError(t, rec, http.StatusServiceUnavailable)
	require.Contains(t, rec.Body.String(), "EBILLING_CALLBACK_TOKEN")

	require.Equal(t, 0, b.count(`SELECT count(*) FROM provider_events`))
	require.Equal(t, db.PaymentPending, b.paymentNow(p.ID).Status)
}

// TestProviderWebhooksNoAPIKey: provider routes take no merchant API key
// (the /v1 group's key check does not apply to them).
func TestProviderWebhooksNoAPIKey(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	for _, path := range []string{"/v1/webhooks/stripe", "/v1/webhooks/moneroo", "/v1/webhooks/ebilling"} {
		rec := b.post(path, []byte(`{}`))
		// The provider's own check answers, not the API key's.
		require.Equal(t, http.StatusUnauthorized, rec.Code, path)
		require.NotContains(t, rec.Body.String(), "API key", path)
	}
}

// TestProviderWebhooksCounted: every call is counted once in
// webhooks_received_total{provider,type,result}.
func TestProviderWebhooksCounted(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setupProvidersWith(t, testProviderConfig, metrics.New(reg, metrics.Config{}))

	pi := "pi_3QPmY2Lkdi0aZb1xCount1"
	p := b.payment("stripe", 5000, pi)
	body := stripeEventFor(t, "payment_intent.succeeded", "evt_count_1", pi, p)
	b.postStripe(body)
	b.postStripe(body)
	b.post("/v1/webhooks/stripe", body, "Stripe-Signature", "t=1,v1=00")
	b.postStripe(golden(t, "stripe_customer.created.json", "event_id", "evt_count_2"))
	b.postStripe([]byte(`{}`))

	b.postMoneroo(monerooPayment(t, "payment.success", "py_count_unknown", "success", `{}`))

	pe := b.payment("ebilling", 5000, "")
	b.postEBilling(ebillingForm(t, newBillingID(), "TX.COUNT.1", pe.ID.String(), "4000"))
	b.postEBilling(ebillingForm(t, newBillingID(), "TX.COUNT.2", pe.ID.String(), "5000"))

	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "webhooks_received_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if v := m.GetCounter().GetValue(); v != 0 { // every known series starts at 0
				got[labels["provider"]+" "+labels["type"]+" "+labels["result"]] = v
			}
		}
	}
	require.Equal(t, map[string]float64{
		"stripe payment_intent.succeeded applied":   1,
		"stripe payment_intent.succeeded duplicate": 1,
		"stripe unknown invalid_signature":          1, // not read: its type is not known
		"stripe other ignored":                      1, // customer.created, recorded and ignored
		"stripe unknown error":                      1, // signed, but not an event
		"moneroo payment.success unmatched":         1,
		"ebilling payment.paid amount_mismatch":     1,
		"ebilling payment.paid applied":             1,
	}, got)
}

func TestReceivedResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		res  *db.ProviderEventResult
		err  error
		want string
	}{
		{nil, &db.Error{Code: db.EUnauthorized}, "invalid_signature"},
		{nil, invalid("", "bad"), "error"},
		{nil, &db.Error{Code: db.EUnavailable}, "error"},
		{&db.ProviderEventResult{Outcome: db.OutcomeUnmatched}, nil, "unmatched"},
		{&db.ProviderEventResult{Outcome: db.OutcomeAmountMismatch}, nil, "amount_mismatch"},
	} {
		require.Equal(t, tc.want, receivedResult(tc.res, tc.err))
	}
}

func TestParseDecimalAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		ok    bool
		want  int64
		match bool
	}{
		{"5000", true, 5000, true},
		{" 5000.00 ", true, 5000, true},
		{"5000.0", true, 5000, true},
		{"05000", true, 5000, true},
		{"5000.5", true, 5000, false},
		{"4999", true, 5000, false},
		{"999999999999999999", true, 5000, false},
		{"", false, 0, false},
		{"-5000", false, 0, false},
		{"5000.", false, 0, false},
		{".5", false, 0, false},
		{"5e3", false, 0, false},
		{"5 000", false, 0, false},
		{"1234567890123456789", false, 0, false},
	} {
		amount, ok := parseDecimalAmount(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		if ok {
			require.Equal(t, strings.TrimSpace(tc.in), amount)
		}
	}
}
