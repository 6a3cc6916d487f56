package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// The tests in this file each guard one way the provider path used to get
// money wrong, through the real routes: each failed before provider events
// were applied by db's one transition path with the actor as an input.

// call sends a JSON request with a bearer token ("" for none).
func (b *providerBundle) call(method, path, token string, body any) *httptest.ResponseRecorder {
	b.t.Helper()
	var r *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(b.t, err)
		r = bytes.NewReader(raw)
	} else {
		r = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, req)
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), "body: %s", rec.Body)
	return m
}

// paymentIn creates a PENDING payment in any currency.
func (b *providerBundle) paymentIn(gateway, currency string, amount int64, ref string) *db.Payment {
	b.t.Helper()
	params := db.PaymentCreateParams{MerchantID: b.merchant.ID, Amount: amount, Currency: currency, Gateway: gateway}
	if ref != "" {
		params.ProviderReference = &ref
	}
	return dbtest.Payment(b.t, b.store, params)
}

// eventTypes lists the merchant events of an object, oldest first.
func (b *providerBundle) eventTypes(id uuid.UUID) []string {
	b.t.Helper()
	rows, err := b.store.Pool.Query(context.Background(), `SELECT type FROM events WHERE object_id = $1 ORDER BY id`, id)
	require.NoError(b.t, err)
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(b.t, err)
	return types
}

func newRef(prefix string) string {
	return prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:14]
}

func swap(body []byte, old, new string) []byte {
	if !bytes.Contains(body, []byte(old)) {
		panic("golden has no " + old)
	}
	return bytes.ReplaceAll(body, []byte(old), []byte(new))
}

// Defect: a Stripe payment_intent.succeeded for 500 XAF, or in EUR, settled
// a 50 000 XAF payment. Now: amount_mismatch, nothing moves, review set.
func TestDefectStripeSuccessForOtherMoney(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	for _, tc := range []struct {
		name   string
		amount int64
		edit   func([]byte) []byte
	}{
		{"500 XAF for 50000", 50000, func(body []byte) []byte { return body }},
		{"EUR for XAF", 5000, func(body []byte) []byte { return swap(body, `"currency": "xaf"`, `"currency": "eur"`) }},
		{"received more than the amount", 5000, func(body []byte) []byte {
			return swap(body, `"amount_received": 5000`, `"amount_received": 9000`)
		}},
	} {
		pi := newRef("pi_")
		p := b.payment("stripe", tc.amount, pi)
		body := tc.edit(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p))
		requireAnswer(t, b.postStripe(body), db.OutcomeAmountMismatch)
		got := b.paymentNow(p.ID)
		require.Equal(t, db.PaymentPending, got.Status, tc.name)
		require.NotNil(t, got.Review, tc.name)
		require.Equal(t, db.ReviewAmountMismatch, got.Review.Reason, tc.name)
		require.Equal(t, []string{"payment.pending", "payment.requires_review"}, b.eventTypes(p.ID), tc.name)
	}
}

// A capture of less than the amount still succeeds, with review.
func TestStripePartialCapture(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	body := swap(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p), `"amount_received": 5000`, `"amount_received": 3000`)
	requireAnswer(t, b.postStripe(body), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	require.Equal(t, int64(3000), *got.AmountReceived)
	require.Equal(t, db.ReviewPartialCapture, got.Review.Reason)
}

// Defect: a Moneroo success for 100 XOF settled a 100 000 XOF payment.
// Now the paid amount must be at least ours, in our currency, and the
// object itself must say success.
func TestDefectMonerooPaidLess(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	for _, tc := range []struct {
		name, currency string
		amount         int64
		edit           func([]byte) []byte
		want           string
		received       int64
	}{
		{"100 XOF for 100000", "XOF", 100000, func(body []byte) []byte {
			return swap(swap(body, `"amount": 5000`, `"amount": 100`), `"currency": "XAF"`, `"currency": "XOF"`)
		}, db.OutcomeAmountMismatch, 0},
		{"XOF for XAF", "XAF", 5000, func(body []byte) []byte { return swap(body, `"currency": "XAF"`, `"currency": "XOF"`) }, db.OutcomeAmountMismatch, 0},
		{"status not success", "XAF", 5000, func(body []byte) []byte { return swap(body, `"status": "success"`, `"status": "pending"`) }, db.OutcomeAmountMismatch, 0},
		{"paid more", "XAF", 4000, func(body []byte) []byte { return body }, db.OutcomeApplied, 5000},
	} {
		id := newMonerooID("py_")
		p := b.paymentIn("moneroo", tc.currency, tc.amount, id)
		body := tc.edit(monerooPayment(t, "payment.success", id, "success", `{"boohpay_payment_id":"`+p.ID.String()+`"}`))
		requireAnswer(t, b.postMoneroo(body), tc.want)
		got := b.paymentNow(p.ID)
		if tc.want == db.OutcomeApplied {
			require.Equal(t, db.PaymentSucceeded, got.Status, tc.name)
			require.Equal(t, tc.received, *got.AmountReceived, tc.name)
			continue
		}
		require.Equal(t, db.PaymentPending, got.Status, tc.name)
		require.Equal(t, db.ReviewAmountMismatch, got.Review.Reason, tc.name)
	}
}

// Defect: eBilling amounts were compared in the wrong unit for non-XAF
// currencies. eBilling bills in XAF only: another currency is refused at
// create, nothing written.
func TestDefectEBillingXAFOnly(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	for _, currency := range []string{"EUR", "XOF", "USD"} {
		rec := b.call("POST", "/v1/payments", b.key, map[string]any{"amount": 5000, "currency": currency, "gateway": "ebilling"})
		require.Equal(t, "parameter_invalid", requireError(t, rec, http.StatusUnprocessableEntity), currency)
	}
	require.Equal(t, 0, b.count(`SELECT count(*) FROM payments`))
	rec := b.call("POST", "/v1/payments", b.key, map[string]any{"amount": 5000, "currency": "XAF", "gateway": "ebilling"})
	require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
}

// Defect: merchant B registered merchant A's pi_… as its own
// provider_reference; A's customer paid and B's payment went SUCCEEDED
// (the lookup was global, newest first). Now the reference is unique per
// gateway: B's create answers 409 provider_reference_taken and A is paid.
func TestDefectProviderReferenceHijack(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	other, err := b.store.MerchantCreate(context.Background(), "Merchant B", "")
	require.NoError(t, err)
	pi := newRef("pi_")

	rec := b.call("POST", "/v1/payments", b.key, map[string]any{"amount": 5000, "currency": "XAF", "gateway": "stripe", "provider_reference": pi})
	require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
	aID := uuid.MustParse(decode(t, rec)["id"].(string))

	rec = b.call("POST", "/v1/payments", other.APIKey, map[string]any{"amount": 5000, "currency": "XAF", "gateway": "stripe", "provider_reference": pi})
	require.Equal(t, db.EProviderReferenceTaken, requireError(t, rec, http.StatusConflict))
	require.Equal(t, 0, b.count(`SELECT count(*) FROM payments WHERE merchant_id = $1`, other.Merchant.ID))
	// The same reference on another gateway is another provider's object.
	rec = b.call("POST", "/v1/payments", other.APIKey, map[string]any{"amount": 5000, "currency": "XAF", "gateway": "moneroo", "provider_reference": pi})
	require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)

	requireAnswer(t, b.postStripe(stripeEventWithoutID(t, "payment_intent.succeeded", newRef("evt_"), pi)), db.OutcomeApplied)
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(aID).Status)
}

// Defect: a declined card then a successful retry (Stripe's normal flow:
// payment_failed does not end a PaymentIntent) left the payment FAILED.
func TestDefectFailedThenSucceeded(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.payment_failed", newRef("evt_"), pi, p)), db.OutcomeApplied)
	require.Equal(t, db.PaymentFailed, b.paymentNow(p.ID).Status)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	require.Nil(t, got.FailureReason)
	require.Nil(t, got.Review, "a retry that succeeds is Stripe's normal flow, nothing to review")
	require.Equal(t, []string{"payment.pending", "payment.failed", "payment.succeeded"}, b.eventTypes(p.ID))
}

// Defect: money captured after the merchant cancelled locally was refused
// and forgotten. Now the money wins, flagged captured_after_cancel; an
// operator finds it with one admin call and resolves it with a note.
func TestDefectCaptureAfterCancel(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	rec := b.call("POST", "/v1/payments/"+p.ID.String()+"/cancel", b.key, nil)
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)

	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	require.Equal(t, db.ReviewCapturedAfterCancel, got.Review.Reason)
	require.Equal(t, []string{"payment.pending", "payment.cancelled", "payment.succeeded", "payment.requires_review"}, b.eventTypes(p.ID))

	rec = b.call("GET", "/admin/reviews", testAdminToken, nil)
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	list := decode(t, rec)["data"].([]any)
	require.Len(t, list, 1)
	item := list[0].(map[string]any)
	require.Equal(t, "payment", item["object"])
	require.Equal(t, p.ID.String(), item["id"])
	require.Equal(t, db.ReviewCapturedAfterCancel, item["review"].(map[string]any)["reason"])

	path := "/admin/payments/" + p.ID.String() + "/review/resolve"
	require.Equal(t, "parameter_invalid", requireError(t, b.call("POST", path, testAdminToken, map[string]any{"note": " "}), http.StatusUnprocessableEntity))
	rec = b.call("POST", path, testAdminToken, map[string]any{"note": "order shipped after all; customer told"})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Nil(t, decode(t, rec)["review"])
	require.Nil(t, b.paymentNow(p.ID).Review)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM admin_actions WHERE object_id = $1 AND action = 'payment.review_resolve'
		AND reason LIKE 'order shipped after all; customer told (review captured_after_cancel:%'`, p.ID))
	require.Equal(t, "conflict", requireError(t, b.call("POST", path, testAdminToken, map[string]any{"note": "again"}), http.StatusConflict))
	require.Empty(t, decode(t, b.call("GET", "/admin/reviews", testAdminToken, nil))["data"])
}

// Defect: a refund reported before the success left the payment SUCCEEDED
// forever although the money went back. Now the implied SUCCEEDED and the
// REFUNDED are applied together (two events, one transaction), and the
// late success is stale.
func TestDefectRefundBeforeSuccess(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	refund := stripeEventWithoutID(t, "charge.refunded", newRef("evt_"), pi, "amount_refunded", "5000", "refunded", "true")
	requireAnswer(t, b.postStripe(refund), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentRefunded, got.Status)
	require.Equal(t, int64(5000), *got.AmountReceived)
	require.Equal(t, int64(5000), got.AmountRefunded)
	require.Equal(t, []string{"payment.pending", "payment.succeeded", "payment.refunded"}, b.eventTypes(p.ID))
	require.Equal(t, 1, b.count(`SELECT count(DISTINCT xmin::text) FROM events
		WHERE object_id = $1 AND type IN ('payment.succeeded', 'payment.refunded')`, p.ID), "both events come from one transaction")

	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)), db.OutcomeStale)
	require.Equal(t, db.PaymentRefunded, b.paymentNow(p.ID).Status)
}

// Defect: an authorization released without capture (charge.refunded with
// captured:false) and a refund that failed (charge.refund.updated, status
// failed) were ignored.
func TestStripeReleaseAndFailedRefund(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)

	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.amount_capturable_updated", newRef("evt_"), pi, p)), db.OutcomeApplied)
	require.Equal(t, db.PaymentAuthorized, b.paymentNow(p.ID).Status)
	release := swap(stripeEventWithoutID(t, "charge.refunded", newRef("evt_"), pi, "amount_refunded", "5000", "refunded", "true"),
		`"captured": true`, `"captured": false`)
	requireAnswer(t, b.postStripe(release), db.OutcomeApplied)
	require.Equal(t, db.PaymentCancelled, b.paymentNow(p.ID).Status)

	pi = newRef("pi_")
	p = b.payment("stripe", 5000, pi)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)), db.OutcomeApplied)
	requireAnswer(t, b.postStripe(stripeEventWithoutID(t, "charge.refunded", newRef("evt_"), pi, "amount_refunded", "5000", "refunded", "true")), db.OutcomeApplied)
	require.Equal(t, db.PaymentRefunded, b.paymentNow(p.ID).Status)
	requireAnswer(t, b.postStripe(golden(t, "stripe_charge.refund.updated.json", "event_id", newRef("evt_"), "pi", pi,
		"amount", "5000", "status", "succeeded")), db.OutcomeIgnored)
	requireAnswer(t, b.postStripe(golden(t, "stripe_charge.refund.updated.json", "event_id", newRef("evt_"), "pi", pi,
		"amount", "5000", "status", "failed")), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	require.Equal(t, int64(0), got.AmountRefunded)
	require.Equal(t, db.ReviewRefundFailed, got.Review.Reason)
	require.Equal(t, []string{"payment.pending", "payment.succeeded", "payment.refunded", "payment.succeeded", "payment.requires_review"}, b.eventTypes(p.ID))
}

// Defect: disputes were ignored. Now dispute_status follows them and the
// merchant hears payment.disputed and payment.dispute_closed.
func TestStripeDisputes(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)), db.OutcomeApplied)

	created := golden(t, "stripe_charge.dispute.created.json", "event_id", "evt_dispute_created", "pi", pi, "status", "needs_response")
	requireAnswer(t, b.postStripe(created), db.OutcomeApplied)
	require.Equal(t, "needs_response", *b.paymentNow(p.ID).DisputeStatus)
	requireAnswer(t, b.postStripe(golden(t, "stripe_charge.dispute.closed.json", "event_id", newRef("evt_"), "pi", pi, "status", "won")), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, "won", *got.DisputeStatus)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	// Delivered late (another event id, same dispute): stale.
	requireAnswer(t, b.postStripe(golden(t, "stripe_charge.dispute.created.json", "event_id", newRef("evt_"), "pi", pi, "status", "needs_response")), db.OutcomeStale)
	require.Equal(t, []string{"payment.pending", "payment.succeeded", "payment.disputed", "payment.dispute_closed"}, b.eventTypes(p.ID))
}

// Defect: a second PaymentIntent (or Moneroo payment) paying an
// already-paid payment was swallowed. Now duplicate_payment: review, a
// refund is owed.
func TestDefectDuplicatePayment(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	pi := newRef("pi_")
	p := b.payment("stripe", 5000, pi)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)), db.OutcomeApplied)
	requireAnswer(t, b.postStripe(stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), newRef("pi_"), p)), db.OutcomeDuplicatePayment)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	require.Equal(t, db.ReviewDuplicatePayment, got.Review.Reason)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))
	require.Equal(t, 1, b.events(p.ID, "payment.requires_review"))

	id := newMonerooID("py_")
	pm := b.payment("moneroo", 5000, id)
	meta := `{"boohpay_payment_id":"` + pm.ID.String() + `"}`
	requireAnswer(t, b.postMoneroo(monerooPayment(t, "payment.success", id, "success", meta)), db.OutcomeApplied)
	requireAnswer(t, b.postMoneroo(monerooPayment(t, "payment.success", newMonerooID("py_"), "success", meta)), db.OutcomeDuplicatePayment)
	require.Equal(t, db.ReviewDuplicatePayment, b.paymentNow(pm.ID).Review.Reason)

	pe := b.payment("ebilling", 5000, "")
	bill := newBillingID()
	requireAnswer(t, b.postEBilling(ebillingForm(t, bill, "TX.DUP.1", pe.ID.String(), "5000")), db.OutcomeApplied)
	requireAnswer(t, b.postEBilling(ebillingForm(t, bill, "TX.DUP.2", pe.ID.String(), "5000")), db.OutcomeDuplicatePayment)
}

// Defect: a payout that failed and then succeeded stayed FAILED (the money
// had left). Now SUCCEEDED with review late_success.
func TestDefectPayoutLateSuccess(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	id := newMonerooID("po_")
	po := b.payout("moneroo", 20000, id)
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.failed", id, "failed", `{}`)), db.OutcomeApplied)
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.success", id, "success", `{}`)), db.OutcomeApplied)
	got := b.payoutNow(po.ID)
	require.Equal(t, db.PayoutSucceeded, got.Status)
	require.Equal(t, db.ReviewLateSuccess, got.Review.Reason)
	require.Equal(t, []string{"payout.pending", "payout.failed", "payout.succeeded", "payout.requires_review"}, b.eventTypes(po.ID))
	// A processing notice delivered after the end is stale.
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.initiated", id, "pending", `{}`)), db.OutcomeStale)
}

// Stripe payouts: payout.paid → SUCCEEDED, payout.failed and .canceled →
// FAILED, each checked against the payout's money.
func TestStripePayouts(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	post := func(typ string, po *db.Payout, ref, amount, currency string) *httptest.ResponseRecorder {
		code, msg := "null", "null"
		if typ != "paid" {
			code, msg = `"account_closed"`, `"The bank account has been closed."`
		}
		return b.postStripe(golden(t, "stripe_payout."+typ+".json", "event_id", newRef("evt_"), "po", ref, "payout_id", po.ID.String(),
			"amount", amount, "currency", currency, "failure_code", code, "failure_message", msg))
	}
	for _, typ := range []string{"paid", "failed", "canceled"} {
		ref := newRef("po_")
		po := b.payout("stripe", 20000, ref)
		requireAnswer(t, post(typ, po, ref, "20000", "xaf"), db.OutcomeApplied)
		got := b.payoutNow(po.ID)
		if typ == "paid" {
			require.Equal(t, db.PayoutSucceeded, got.Status)
			continue
		}
		require.Equal(t, db.PayoutFailed, got.Status)
		require.Equal(t, "The bank account has been closed.", *got.FailureReason)
	}
	ref := newRef("po_")
	po := b.payout("stripe", 20000, ref)
	requireAnswer(t, post("paid", po, ref, "2000", "xaf"), db.OutcomeAmountMismatch)
	require.Equal(t, db.PayoutPending, b.payoutNow(po.ID).Status)
	require.Equal(t, db.ReviewAmountMismatch, b.payoutNow(po.ID).Review.Reason)
}

// Payout create accepts provider_reference (unique per provider); shap,
// which nothing can move, is refused.
func TestPayoutCreateProviderReference(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	body := func(provider, ref string) map[string]any {
		return map[string]any{"amount": 2500, "currency": "XAF", "provider": provider, "recipient": map[string]any{"phone": "+24166000000"},
			"provider_reference": ref}
	}
	ref := newRef("po_")
	rec := b.call("POST", "/v1/payouts", b.key, body("stripe", ref))
	require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
	require.Equal(t, ref, decode(t, rec)["provider_reference"])
	require.Equal(t, db.EProviderReferenceTaken, requireError(t, b.call("POST", "/v1/payouts", b.key, body("stripe", ref)), http.StatusConflict))
	rec = b.call("POST", "/v1/payouts", b.key, body("shap", newRef("sh_")))
	require.Equal(t, "parameter_invalid", requireError(t, rec, http.StatusUnprocessableEntity))
	require.Contains(t, rec.Body.String(), `"param":"provider"`)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM payouts`))
}

// Defect: the admin override used the same table that refused the
// providers' facts, so it could not fix them. Now it makes the provider's
// moves (and, for payouts, fails a SUCCEEDED one on a human's word),
// recorded in admin_actions.
func TestDefectAdminOverrideFixes(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("sandbox", 5000, "")
	b.setPaymentStatus(p.ID, db.PaymentCancelled)
	rec := b.call("POST", "/admin/payments/"+p.ID.String()+"/status", testAdminToken, map[string]any{"status": "SUCCEEDED", "reason": "bank statement shows the money"})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Equal(t, "SUCCEEDED", decode(t, rec)["status"])
	require.Nil(t, decode(t, rec)["review"], "an operator's move needs no review")

	po := b.payout("sandbox", 2500, "")
	path := "/admin/payouts/" + po.ID.String() + "/status"
	require.Equal(t, "parameter_invalid", requireError(t, b.call("POST", path, testAdminToken, map[string]any{"status": "SUCCEEDED"}), http.StatusUnprocessableEntity))
	rec = b.call("POST", path, testAdminToken, map[string]any{"status": "SUCCEEDED", "reason": "provider portal says paid"})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	rec = b.call("POST", path, testAdminToken, map[string]any{"status": "FAILED", "reason": "bank returned it", "failure_reason": "returned"})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Equal(t, "FAILED", decode(t, rec)["status"])
	require.Equal(t, "invalid_transition", requireError(t, b.call("POST", path, testAdminToken, map[string]any{"status": "PENDING", "reason": "x"}), http.StatusConflict))
	require.Equal(t, 2, b.count(`SELECT count(*) FROM admin_actions WHERE object_id = $1 AND action = 'payout.status_override' AND event_id IS NOT NULL`, po.ID))
	require.Equal(t, []string{"payout.pending", "payout.succeeded", "payout.failed"}, b.eventTypes(po.ID))
}

// TestSandboxSimulateMoney: sandbox drives what a provider could: a
// partial capture, partial and full refunds, a refund before success.
func TestSandboxSimulateMoney(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("sandbox", 5000, "")
	path := "/v1/payments/" + p.ID.String() + "/simulate"
	rec := b.call("POST", path, b.key, map[string]any{"status": "SUCCEEDED", "amount_received": 4000})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Equal(t, float64(4000), decode(t, rec)["amount_received"])
	rec = b.call("POST", path, b.key, map[string]any{"status": "SUCCEEDED", "amount_refunded": 1000})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Equal(t, float64(1000), decode(t, rec)["amount_refunded"])
	rec = b.call("POST", path, b.key, map[string]any{"status": "REFUNDED"})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Equal(t, float64(4000), decode(t, rec)["amount_refunded"])
	require.Equal(t, []string{"payment.pending", "payment.succeeded", "payment.requires_review", "payment.partially_refunded", "payment.refunded"}, b.eventTypes(p.ID))

	p2 := b.payment("sandbox", 5000, "")
	rec = b.call("POST", "/v1/payments/"+p2.ID.String()+"/simulate", b.key, map[string]any{"status": "REFUNDED"})
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Equal(t, []string{"payment.pending", "payment.succeeded", "payment.refunded"}, b.eventTypes(p2.ID))
}

// TestConcurrentSuccessCancelAndDuplicates: a provider's success races the
// merchant's cancel and duplicate deliveries of the same event, many
// rounds. Whoever wins, exactly one event per real transition is emitted,
// the success is applied exactly once, and the money is never lost: the
// payment ends SUCCEEDED (flagged when the cancel came first).
func TestConcurrentSuccessCancelAndDuplicates(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	const rounds, deliveries = 25, 3
	cancelledFirst := 0
	for range rounds {
		pi := newRef("pi_")
		p := b.payment("stripe", 5000, pi)
		body := stripeEventFor(t, "payment_intent.succeeded", newRef("evt_"), pi, p)
		start := make(chan struct{})
		var wg sync.WaitGroup
		answers := make([]*httptest.ResponseRecorder, deliveries)
		var cancel *httptest.ResponseRecorder
		for i := range deliveries {
			wg.Go(func() {
				<-start
				answers[i] = b.postStripe(body)
			})
		}
		wg.Go(func() {
			<-start
			cancel = b.call("POST", "/v1/payments/"+p.ID.String()+"/cancel", b.key, nil)
		})
		close(start)
		wg.Wait()

		results := map[string]int{}
		for _, rec := range answers {
			require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
			results[decode(t, rec)["result"].(string)]++
		}
		require.Equal(t, map[string]int{db.OutcomeApplied: 1, db.OutcomeDuplicate: deliveries - 1}, results)

		got := b.paymentNow(p.ID)
		require.Equal(t, db.PaymentSucceeded, got.Status, "the money is never lost")
		require.Equal(t, int64(5000), *got.AmountReceived)
		types := b.eventTypes(p.ID)
		switch cancel.Code {
		case http.StatusOK: // the cancel won the row lock
			cancelledFirst++
			require.Equal(t, []string{"payment.pending", "payment.cancelled", "payment.succeeded", "payment.requires_review"}, types)
			require.Equal(t, db.ReviewCapturedAfterCancel, got.Review.Reason)
		case http.StatusConflict:
			require.Equal(t, []string{"payment.pending", "payment.succeeded"}, types)
			require.Nil(t, got.Review)
		default:
			t.Fatalf("cancel answered %d: %s", cancel.Code, cancel.Body)
		}
		require.Equal(t, len(types), b.count(`SELECT count(*) FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.object_id = $1`, p.ID))
	}
	t.Logf("%d of %d rounds: the cancel came first", cancelledFirst, rounds)
}
