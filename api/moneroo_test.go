package api

import (
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// monerooSignature signs body as Moneroo does.
func monerooSignature(secret string, body []byte) string {
	return hex.EncodeToString(hmacSHA256(secret, body))
}

func (b *providerBundle) postMoneroo(body []byte) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.post("/v1/webhooks/moneroo", body, "Content-Type", "application/json",
		"X-Moneroo-Signature", monerooSignature(testMonerooSecret, body))
}

// monerooPayment renders a golden Moneroo payment event.
func monerooPayment(t *testing.T, event, monerooID, status, metadata string) []byte {
	t.Helper()
	return golden(t, "moneroo_payment.json", "event", event, "moneroo_id", monerooID, "status", status, "metadata", metadata)
}

func monerooPayout(t *testing.T, event, monerooID, status, metadata string) []byte {
	t.Helper()
	return golden(t, "moneroo_payout.json", "event", event, "moneroo_id", monerooID, "status", status, "metadata", metadata)
}

func newMonerooID(prefix string) string {
	return prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}

// TestMonerooWebhookPayments: payment.success|failed|cancelled move the
// payment named by metadata.boohpay_payment_id, else by data.id.
func TestMonerooWebhookPayments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		event, status, want string
		byRef               bool
		metadata            string // for byRef; %s is replaced by nothing
	}{
		{event: "payment.success", status: "success", want: db.PaymentSucceeded},
		{event: "payment.failed", status: "failed", want: db.PaymentFailed},
		// Cancelled is abandoned: not paid, and not final.
		{event: "payment.cancelled", status: "cancelled", want: db.PaymentFailed},
		{event: "payment.success", status: "success", want: db.PaymentSucceeded, byRef: true, metadata: `{"order":"1042"}`},
		// Moneroo is PHP: empty metadata arrives as [].
		{event: "payment.success", status: "success", want: db.PaymentSucceeded, byRef: true, metadata: `[]`},
	} {
		t.Run(tc.event+"/"+tc.metadata, func(t *testing.T) {
			t.Parallel()
			b := setupProviders(t)
			id := newMonerooID("py_")
			p := b.payment("moneroo", 5000, id)
			metadata := `{"boohpay_payment_id":"` + p.ID.String() + `","order":"1042"}`
			if tc.byRef {
				metadata = tc.metadata
			}
			body := monerooPayment(t, tc.event, id, tc.status, metadata)

			requireAnswer(t, b.postMoneroo(body), db.OutcomeApplied)
			require.Equal(t, tc.want, b.paymentNow(p.ID).Status)
			require.Equal(t, 1, b.events(p.ID, "payment."+strings.ToLower(tc.want)))
			rec := b.providerEvent("moneroo", id+":"+tc.event)
			require.Equal(t, db.OutcomeApplied, rec.Result)
			require.Equal(t, string(body), rec.Payload)
			require.Equal(t, "payment", *rec.ObjectType)
			require.Equal(t, p.ID, *rec.ObjectID)
		})
	}
}

// TestMonerooWebhookPayouts: payout.initiated → PROCESSING, then success or
// failed; a payout is named by metadata.boohpay_payout_id, else by data.id.
func TestMonerooWebhookPayouts(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)

	id := newMonerooID("po_")
	po := b.payout("moneroo", 20000, id)
	byID := `{"boohpay_payout_id":"` + po.ID.String() + `"}`
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.initiated", id, "pending", byID)), db.OutcomeApplied)
	require.Equal(t, db.PayoutProcessing, b.payoutNow(po.ID).Status)
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.success", id, "success", byID)), db.OutcomeApplied)
	require.Equal(t, db.PayoutSucceeded, b.payoutNow(po.ID).Status)
	require.Equal(t, 1, b.events(po.ID, "payout.processing"))
	require.Equal(t, 1, b.events(po.ID, "payout.succeeded"))

	id2 := newMonerooID("po_")
	po2 := b.payout("moneroo", 20000, id2)
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.failed", id2, "failed", `{}`)), db.OutcomeApplied)
	require.Equal(t, db.PayoutFailed, b.payoutNow(po2.ID).Status)

	// A failure after success is never applied on the provider's word:
	// 200 conflict, unchanged, review failure_after_success, warned.
	requireAnswer(t, b.postMoneroo(monerooPayout(t, "payout.failed", id, "failed", byID)), db.OutcomeConflict)
	got := b.payoutNow(po.ID)
	require.Equal(t, db.PayoutSucceeded, got.Status)
	require.NotNil(t, got.Review)
	require.Equal(t, db.ReviewFailureAfterSuccess, got.Review.Reason)
	require.Equal(t, 0, b.events(po.ID, "payout.failed"))
	require.Equal(t, 1, b.events(po.ID, "payout.requires_review"))
	require.Equal(t, db.OutcomeConflict, b.providerEvent("moneroo", id+":payout.failed").Result)
	require.Contains(t, b.logs.String(), "level=WARN")

	// A payout id in the payment's key does not name a payment, and back.
	requireAnswer(t, b.postMoneroo(monerooPayment(t, "payment.success", newMonerooID("py_"), "success",
		`{"boohpay_payment_id":"`+po.ID.String()+`"}`)), db.OutcomeUnmatched)
}

// TestMonerooWebhookSignature: a missing or wrong X-Moneroo-Signature is
// 401 and writes nothing; hex case does not matter.
func TestMonerooWebhookSignature(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	id := newMonerooID("py_")
	p := b.payment("moneroo", 5000, id)
	body := monerooPayment(t, "payment.success", id, "success", `{}`)
	good := monerooSignature(testMonerooSecret, body)

	for _, tc := range []struct {
		name, sig string
		body      []byte
	}{
		{"missing", "", body},
		{"wrong secret", monerooSignature("other", body), body},
		{"tampered body", good, []byte(strings.Replace(string(body), `"amount": 5000`, `"amount": 50`, 1))},
		{"not hex", "sha256=" + good, body},
		{"truncated", good[:40], body},
		{"signature of the empty body", monerooSignature(testMonerooSecret, nil), body},
	} {
		rec := b.post("/v1/webhooks/moneroo", tc.body, "X-Moneroo-Signature", tc.sig)
		require.Equal(t, "unauthorized", requireError(t, rec, http.StatusUnauthorized), tc.name)
	}
	require.Equal(t, 0, b.count(`SELECT count(*) FROM provider_events`))
	require.Equal(t, db.PaymentPending, b.paymentNow(p.ID).Status)

	rec := b.post("/v1/webhooks/moneroo", body, "X-Moneroo-Signature", strings.ToUpper(good))
	requireAnswer(t, rec, db.OutcomeApplied)
}

// TestMonerooWebhookReplay: Moneroo retries (no event id): the same object
// and event again is 200 and changes nothing; a different event of the
// same object is a new event.
func TestMonerooWebhookReplay(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	id := newMonerooID("py_")
	p := b.payment("moneroo", 5000, id)
	body := monerooPayment(t, "payment.success", id, "success", `{}`)

	requireAnswer(t, b.postMoneroo(body), db.OutcomeApplied)
	requireAnswer(t, b.postMoneroo(body), db.OutcomeDuplicate)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))

	requireAnswer(t, b.postMoneroo(monerooPayment(t, "payment.failed", id, "failed", `{}`)), db.OutcomeStale)
	require.Equal(t, 2, b.count(`SELECT count(*) FROM provider_events`))
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p.ID).Status)
}

func TestMonerooWebhookConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	id := newMonerooID("py_")
	p := b.payment("moneroo", 5000, id)
	body := monerooPayment(t, "payment.success", id, "success", `{"boohpay_payment_id":"`+p.ID.String()+`"}`)

	requireOneApplied(t, concurrently(16, func() *httptest.ResponseRecorder { return b.postMoneroo(body) }))
	require.Equal(t, db.PaymentSucceeded, b.paymentNow(p.ID).Status)
	require.Equal(t, 1, b.events(p.ID, "payment.succeeded"))
}

// TestMonerooWebhookUnknownPayment: 200 unmatched, kept; a payout created
// later with the Moneroo id as provider_reference gets it applied.
func TestMonerooWebhookUnknownPayment(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	body := monerooPayment(t, "payment.success", newMonerooID("py_"), "success", `{"boohpay_payment_id":"`+uuid.NewString()+`"}`)
	requireAnswer(t, b.postMoneroo(body), db.OutcomeUnmatched)
	id := newMonerooID("po_")
	body = monerooPayout(t, "payout.success", id, "success", `{}`)
	requireAnswer(t, b.postMoneroo(body), db.OutcomeUnmatched)
	require.Equal(t, 2, b.count(`SELECT count(*) FROM provider_events WHERE result = 'unmatched'`))

	po := b.payout("moneroo", 20000, id)
	require.Equal(t, db.PayoutSucceeded, po.Status)
	require.Equal(t, 1, b.events(po.ID, "payout.succeeded"))
}

// TestMonerooWebhookIgnored: payment.initiated (ours start PENDING) and
// events we do not know are 200, recorded, ignored.
func TestMonerooWebhookIgnored(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	id := newMonerooID("py_")
	p := b.payment("moneroo", 5000, id)

	requireAnswer(t, b.postMoneroo(monerooPayment(t, "payment.initiated", id, "initiated", `{}`)), db.OutcomeIgnored)
	require.Equal(t, db.PaymentPending, b.paymentNow(p.ID).Status)
	rec := b.providerEvent("moneroo", id+":payment.initiated")
	require.Equal(t, db.OutcomeIgnored, rec.Result)
	require.Equal(t, p.ID, *rec.ObjectID)

	requireAnswer(t, b.postMoneroo([]byte(`{"event":"balance.updated","data":{"amount":100}}`)), db.OutcomeIgnored)
	requireAnswer(t, b.postMoneroo([]byte(`{"event":"balance.updated","data":{"amount":100}}`)), db.OutcomeDuplicate)
	requireAnswer(t, b.postMoneroo([]byte(`{"event":"balance.updated","data":{"amount":200}}`)), db.OutcomeIgnored)
	require.Equal(t, 1, b.events(p.ID, ""), "only payment.pending")
}

func TestMonerooWebhookMalformed(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	for _, body := range []string{
		``,
		`not json`,
		`{"data":{"id":"py_1"}}`,                // no event
		`{"event":"payment.success","data":{}}`, // no object id
		`{"event":"payment.success","data":"py_1"}`,    // data not an object
		`{"event":"payment.success","data":{"id":{}}}`, // id not a string
		`{"event":"payment.success","data":{"id":"` + strings.Repeat("p", 300) + `"}}`,
	} {
		requireError(t, b.postMoneroo([]byte(body)), http.StatusBadRequest)
	}
	require.Equal(t, 0, b.count(`SELECT count(*) FROM provider_events`))
}

func TestVerifyMonerooSignature(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"payment.success","data":{"id":"py_1"}}`)
	require.NoError(t, verifyMonerooSignature(monerooSignature("s", body), body, "s"))
	require.NoError(t, verifyMonerooSignature(" "+monerooSignature("s", body)+" ", body, "s"))
	require.Error(t, verifyMonerooSignature(monerooSignature("s", body), body, "t"))
	require.Error(t, verifyMonerooSignature("", body, "s"))
}

// FuzzMonerooWebhook: the verifier accepts exactly the hex HMAC of the body;
// the parser never panics, and what it accepts is keyed by a storable,
// bounded key and maps only Moneroo's documented events.
func FuzzMonerooWebhook(f *testing.F) {
	for _, body := range [][]byte{
		golden(f, "moneroo_payment.json", "event", "payment.success", "moneroo_id", "py_fz1", "status", "success",
			"metadata", `{"boohpay_payment_id":"0193a1c2-7e4f-7b3a-9c1d-2e3f4a5b6c7d"}`),
		golden(f, "moneroo_payout.json", "event", "payout.failed", "moneroo_id", "po_fz1", "status", "failed", "metadata", `[]`),
		[]byte(`{"event":"balance.updated","data":{"amount":100}}`),
		[]byte(`{"event":"payment.success","data":{"id":12345,"metadata":{"boohpay_payment_id":7}}}`),
	} {
		f.Add(monerooSignature(fuzzMonerooSecret, body), body)
		f.Add("00", body)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := verifyMonerooSignature(header, body, fuzzMonerooSecret)
		want := monerooSignature(fuzzMonerooSecret, body)
		require.Equal(t, strings.ToLower(strings.TrimSpace(header)) == want, err == nil, "header %q", header)
		require.NoError(t, verifyMonerooSignature(want, body, fuzzMonerooSecret))

		ev, err := parseMonerooEvent(body)
		if err != nil {
			require.Equal(t, db.EInvalid, db.ErrorCode(err))
			return
		}
		requireStorableEvent(t, ev)
		_, mapped := monerooTypes[ev.Type]
		require.True(t, strings.HasSuffix(ev.Key, ":"+ev.Type))
		if mapped {
			require.Equal(t, ev.Ref+":"+ev.Type, ev.Key)
		}
	})
}
