package api

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

const ebillingPath = "/v1/webhooks/ebilling?token=" + testEBillingToken

// ebillingForm renders eBilling's golden callback.
func ebillingForm(t *testing.T, billingID, transactionID, reference, amount string) []byte {
	t.Helper()
	return golden(t, "ebilling_callback.form", "billingid", billingID, "transactionid", transactionID,
		"reference", url.QueryEscape(reference), "amount", amount)
}

func (b *providerBundle) postEBilling(body []byte) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.post(ebillingPath, body, "Content-Type", "application/x-www-form-urlencoded")
}

func newBillingID() string { return "555" + strings.ReplaceAll(uuid.NewString(), "-", "")[:7] }

// TestEBillingCallbackPaid: the callback's arrival means paid; the payment
// named by reference moves to SUCCEEDED once.
func TestEBillingCallbackPaid(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("ebilling", 5000, "")
	body := ebillingForm(t, newBillingID(), "AM241126.1421.C00042", p.ID.String(), "5000")

	requireAnswer(t, b.postEBilling(body), db.OutcomeApplied)
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p.ID).Status)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))
	rec := b.providerEvent("ebilling", "transaction:AM241126.1421.C00042")
	require.Equal(t, "payment.paid", rec.EventType)
	require.Equal(t, string(body), rec.Payload, "the raw form is kept as sent")
	require.Equal(t, p.ID, *rec.ObjectID)

	requireAnswer(t, b.postEBilling(body), db.OutcomeDuplicate)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))
}

// TestEBillingCallbackForms: multipart forms, decimal amounts, no Content-Type,
// and the bill id as key and provider_reference when the other fields are empty.
func TestEBillingCallbackForms(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)

	p := b.payment("ebilling", 5000, "")
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, kv := range [][2]string{{"billingid", newBillingID()}, {"transactionid", "MP.1"}, {"reference", p.ID.String()},
		{"amount", "5000.00"}, {"paymentsystem", "moovmoney4"}, {"state", "paid"}} {
		require.NoError(t, w.WriteField(kv[0], kv[1]))
	}
	fw, err := w.CreateFormFile("receipt", "receipt.txt")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("ignored"))
	require.NoError(t, w.Close())
	rec := b.post(ebillingPath, buf.Bytes(), "Content-Type", w.FormDataContentType())
	requireAnswer(t, rec, db.OutcomeApplied)
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p.ID).Status)

	// No reference, no transaction id: found by the bill id, keyed by it.
	billingID := newBillingID()
	p2 := b.payment("ebilling", 7500, billingID)
	body := ebillingForm(t, billingID, "", "", "7500")
	requireAnswer(t, b.post(ebillingPath, body), db.OutcomeApplied)
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p2.ID).Status)
	require.Equal(t, db.OutcomeApplied, b.providerEvent("ebilling", "bill:"+billingID).Result)

	rec = b.post(ebillingPath, []byte(`{"reference":"x"}`), "Content-Type", "application/json")
	requireError(t, rec, http.StatusUnsupportedMediaType)
}

// TestEBillingCallbackToken: a missing or wrong token is 401 and writes nothing.
func TestEBillingCallbackToken(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("ebilling", 5000, "")
	body := ebillingForm(t, newBillingID(), "TX.TOKEN", p.ID.String(), "5000")
	for _, path := range []string{
		"/v1/webhooks/ebilling",
		"/v1/webhooks/ebilling?token=",
		"/v1/webhooks/ebilling?token=wrong",
		"/v1/webhooks/ebilling?token=" + testEBillingToken + "x",
		"/v1/webhooks/ebilling?token=" + testEBillingToken[:len(testEBillingToken)-1],
		"/v1/webhooks/ebilling?TOKEN=" + testEBillingToken,
	} {
		rec := b.post(path, body, "Content-Type", "application/x-www-form-urlencoded")
		require.Equal(t, "unauthorized", requireError(t, rec, http.StatusUnauthorized), path)
	}
	require.Equal(t, 0, b.count(`SELECT count(*) FROM provider_events`))
	require.Equal(t, db.PaymentPending, b.paymentNow(p.ID).Status)
}

// TestEBillingCallbackAmountMismatch: an amount other than the payment's
// (major units of XAF) answers 200 amount_mismatch, recorded, warned; the
// payment is left alone and flagged for review.
func TestEBillingCallbackAmountMismatch(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("ebilling", 5000, "")
	for i, amount := range []string{"500", "5000.50", "50000"} {
		txn := "TX.MISMATCH." + string(rune('A'+i))
		requireAnswer(t, b.postEBilling(ebillingForm(t, newBillingID(), txn, p.ID.String(), amount)), db.OutcomeAmountMismatch)
		ev := b.providerEvent("ebilling", "transaction:"+txn)
		require.Equal(t, db.OutcomeAmountMismatch, ev.Result)
		require.Contains(t, *ev.Detail, amount)
	}
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentPending, got.Status)
	require.Equal(t, db.ReviewAmountMismatch, got.Review.Reason)
	require.Equal(t, 0, b.events(p.ID, "payment.succeeded"))
	require.Equal(t, 3, b.events(p.ID, "payment.requires_review"))
	require.Contains(t, b.logs.String(), `level=WARN msg="provider webhook" provider=ebilling type=payment.paid result=amount_mismatch`)

	// The right amount still pays it.
	requireAnswer(t, b.postEBilling(ebillingForm(t, newBillingID(), "TX.MISMATCH.OK", p.ID.String(), "5000")), db.OutcomeApplied)
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p.ID).Status)
}

func TestEBillingCallbackConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("ebilling", 5000, "")
	body := ebillingForm(t, newBillingID(), "TX.CONCURRENT", p.ID.String(), "5000")

	requireOneApplied(t, concurrently(16, func() *httptest.ResponseRecorder { return b.postEBilling(body) }))
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p.ID).Status)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM provider_events`))
}

// TestEBillingCallbackUnknownPayment: 200 unmatched, kept; a payment of
// another gateway is not eBilling's to move.
func TestEBillingCallbackUnknownPayment(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	requireAnswer(t, b.postEBilling(ebillingForm(t, newBillingID(), "TX.UNKNOWN.1", uuid.NewString(), "5000")), db.OutcomeUnmatched)
	requireAnswer(t, b.postEBilling(ebillingForm(t, newBillingID(), "TX.UNKNOWN.2", "ORDER-1042", "5000")), db.OutcomeUnmatched)
	other := b.payment("sandbox", 5000, "")
	requireAnswer(t, b.postEBilling(ebillingForm(t, newBillingID(), "TX.UNKNOWN.3", other.ID.String(), "5000")), db.OutcomeUnmatched)
	require.Equal(t, db.PaymentPending, b.paymentNow(other.ID).Status)
	require.Equal(t, 3, b.count(`SELECT count(*) FROM provider_events WHERE result = 'unmatched'`))
}

// TestEBillingCallbackCapturedAfterCancel: money received for a payment
// the merchant cancelled: the provider's word about money wins, but not
// silently: SUCCEEDED with review captured_after_cancel.
func TestEBillingCallbackCapturedAfterCancel(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("ebilling", 5000, "")
	b.setPaymentStatus(p.ID, db.PaymentCancelled)

	requireAnswer(t, b.postEBilling(ebillingForm(t, newBillingID(), "TX.LATE", p.ID.String(), "5000")), db.OutcomeApplied)
	got := b.paymentNow(p.ID)
	require.Equal(t, db.PaymentSucceeded, got.Status)
	require.Equal(t, db.ReviewCapturedAfterCancel, got.Review.Reason)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))
	require.Equal(t, 1, b.events(p.ID, "payment.requires_review"))
}

func TestEBillingCallbackMalformed(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	p := b.payment("ebilling", 5000, "")
	id := p.ID.String()
	for _, body := range []string{
		"billingid=1&transactionid=TX&reference=" + id,                  // no amount
		"billingid=1&transactionid=TX&reference=" + id + "&amount=abc",  // amount not a number
		"billingid=1&transactionid=TX&reference=" + id + "&amount=-5",   // negative
		"reference=" + id + "&amount=5000",                              // no transactionid nor billingid
		"billingid=1&transactionid=TX%00&reference=" + id + "&amount=5", // NUL in the key
		"billingid=1&transactionid=%ff&reference=" + id + "&amount=5",   // not UTF-8
		"billingid=1&transactionid=%zz&amount=5",                        // bad escape
	} {
		requireError(t, b.postEBilling([]byte(body)), http.StatusBadRequest)
	}
	rec := b.post(ebillingPath, []byte("--x\r\n"), "Content-Type", "multipart/form-data")
	requireError(t, rec, http.StatusBadRequest)
	require.Equal(t, 0, b.count(`SELECT count(*) FROM provider_events`))
	require.Equal(t, db.PaymentPending, b.paymentNow(p.ID).Status)
}

// TestTokenEqual: the one comparison of a client's token with ours (admin,
// metrics, eBilling). It compares SHA-256 digests, always 32 bytes each, so
// a shorter, longer or empty token costs the same as a wrong one of the
// right length (subtle.ConstantTimeCompare on the raw tokens returns at once
// when the lengths differ: the length leaked).
func TestTokenEqual(t *testing.T) {
	t.Parallel()
	require.True(t, tokenEqual("abc", "abc"))
	require.False(t, tokenEqual("abd", "abc"))
	require.False(t, tokenEqual("ab", "abc"))
	require.False(t, tokenEqual("abcd", "abc"))
	require.False(t, tokenEqual("abc\x00", "abc"))
	require.False(t, tokenEqual("", ""), "an empty token never passes")
	require.False(t, tokenEqual("", "abc"))
	require.False(t, tokenEqual("abc", ""), "no token configured: nothing matches")
}

// FuzzEBillingCallback: the form parser never panics; what it accepts is
// keyed by a storable, bounded key, carries a valid amount, and asks only
// for SUCCEEDED.
func FuzzEBillingCallback(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	f.Add(form, golden(f, "ebilling_callback.form", "billingid", "5550001", "transactionid", "AM241126.1421.C00042",
		"reference", "0193a1c2-7e4f-7b3a-9c1d-2e3f4a5b6c7d", "amount", "5000"))
	f.Add(form, golden(f, "ebilling_callback.form", "billingid", "5550002", "transactionid", "",
		"reference", "", "amount", "5000.00"))
	f.Add("", []byte("billingid=1&amount=1"))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"billingid\"\r\n\r\n7\r\n"+
		"--x\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n5000\r\n--x--\r\n"))
	f.Add("text/plain", []byte("amount=1"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		ev, err := parseEBillingCallback(contentType, body)
		if err != nil {
			var he *echo.HTTPError
			if errors.As(err, &he) {
				require.Equal(t, http.StatusUnsupportedMediaType, he.Code)
			} else {
				require.Equal(t, db.EInvalid, db.ErrorCode(err))
			}
			return
		}
		requireStorableEvent(t, ev)
		require.True(t, strings.HasPrefix(ev.Key, "transaction:") || strings.HasPrefix(ev.Key, "bill:"), ev.Key)
		require.Equal(t, "XAF", ev.Currency)
		amount, ok := parseDecimalAmount(ev.Amount)
		require.True(t, ok)
		require.Equal(t, ev.Amount, amount)
	})
}
