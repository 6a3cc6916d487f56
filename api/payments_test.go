package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPaymentCreateGetAndEvents(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("POST", "/v1/payments", map[string]any{
		"amount": 5000, "currency": "XAF", "gateway": "sandbox", "reference": "order-1",
		"description": "Panier", "metadata": map[string]string{"order": "1"},
	})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	p := res.json(t)
	for _, k := range []string{"id", "object", "amount", "currency", "gateway", "status", "reference", "description",
		"metadata", "provider_reference", "failure_reason", "created_at", "updated_at"} {
		require.Contains(t, p, k)
	}
	require.Equal(t, "payment", p["object"])
	require.Equal(t, "PENDING", p["status"])
	require.EqualValues(t, 5000, p["amount"])

	got := a.do("GET", "/v1/payments/"+p["id"].(string), nil)
	require.Equal(t, http.StatusOK, got.Code)
	require.Equal(t, p, got.json(t))

	events := a.do("GET", "/v1/events?type=payment.pending", nil)
	require.Equal(t, http.StatusOK, events.Code)
	list := events.json(t)
	require.Equal(t, "list", list["object"])
	data := list["data"].([]any)
	require.Len(t, data, 1)
	ev := data[0].(map[string]any)
	require.Equal(t, "payment.pending", ev["type"])
	require.Equal(t, p["id"], ev["data"].(map[string]any)["id"])

	one := a.do("GET", "/v1/events/"+ev["id"].(string), nil)
	require.Equal(t, http.StatusOK, one.Code)
}

func TestPaymentCancelAndSimulate(t *testing.T) {
	t.Parallel()
	a := setup(t)
	id := a.createPayment(1000)

	res := a.do("POST", "/v1/payments/"+id+"/simulate", map[string]any{"status": "AUTHORIZED"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, "AUTHORIZED", res.json(t)["status"])

	res = a.do("POST", "/v1/payments/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, "CANCELLED", res.json(t)["status"])

	res = a.do("POST", "/v1/payments/"+id+"/cancel", nil) // already: a no-op
	require.Equal(t, http.StatusOK, res.Code)

	// What a provider could do, sandbox can: money captured after the cancel
	// wins, flagged for review.
	res = a.do("POST", "/v1/payments/"+id+"/simulate", map[string]any{"status": "SUCCEEDED"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, "captured_after_cancel", res.json(t)["review"].(map[string]any)["reason"])

	// A merchant cannot cancel money that moved.
	res = a.do("POST", "/v1/payments/"+id+"/cancel", nil)
	require.Equal(t, http.StatusConflict, res.Code)
	require.Equal(t, "invalid_transition", res.errorOf(t)["code"])
	res = a.do("POST", "/v1/payments/"+id+"/simulate", map[string]any{"status": "FAILED"})
	require.Equal(t, http.StatusConflict, res.Code)
	require.Equal(t, "invalid_transition", res.errorOf(t)["code"])

	// pending, authorized, cancelled, succeeded, requires_review
	require.Equal(t, 5, a.count(`SELECT count(*) FROM events WHERE object_id = $1`, id))

	// Simulate is for sandbox payments only.
	res = a.do("POST", "/v1/payments", map[string]any{"amount": 100, "currency": "XOF", "gateway": "stripe"})
	require.Equal(t, http.StatusCreated, res.Code)
	stripeID := res.json(t)["id"].(string)
	res = a.do("POST", "/v1/payments/"+stripeID+"/simulate", map[string]any{"status": "SUCCEEDED"})
	require.Equal(t, http.StatusConflict, res.Code)
	require.Equal(t, "gateway", res.errorOf(t)["param"])
}

func TestPaymentFailureReason(t *testing.T) {
	t.Parallel()
	a := setup(t)
	id := a.createPayment(1000)
	res := a.do("POST", "/v1/payments/"+id+"/simulate", map[string]any{"status": "FAILED", "failure_reason": "insufficient_funds"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, "insufficient_funds", res.json(t)["failure_reason"])
}

func TestPaymentCreateRejectsBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	a := setup(t)
	long := strings.Repeat("x", 256)
	cases := []struct {
		name   string
		body   string
		ctype  string
		status int
		param  string
	}{
		{"broken JSON", `{"amount": 5000,`, "", 400, ""},
		{"not an object", `[1,2]`, "", 400, ""},
		{"two objects", `{"amount":1,"currency":"XAF","gateway":"sandbox"}{}`, "", 400, ""},
		{"amount as string", `{"amount":"5000","currency":"XAF","gateway":"sandbox"}`, "", 400, "amount"},
		{"amount fractional", `{"amount":50.5,"currency":"XAF","gateway":"sandbox"}`, "", 400, "amount"},
		{"amount overflows int64", `{"amount":1e30,"currency":"XAF","gateway":"sandbox"}`, "", 400, "amount"},
		{"amount huge integer", `{"amount":99999999999999999999999,"currency":"XAF","gateway":"sandbox"}`, "", 400, "amount"},
		{"amount zero", `{"amount":0,"currency":"XAF","gateway":"sandbox"}`, "", 422, "amount"},
		{"amount negative", `{"amount":-5,"currency":"XAF","gateway":"sandbox"}`, "", 422, "amount"},
		{"amount above bound", `{"amount":1000000000000,"currency":"XAF","gateway":"sandbox"}`, "", 422, "amount"},
		{"amount missing", `{"currency":"XAF","gateway":"sandbox"}`, "", 422, "amount"},
		{"currency lower case", `{"amount":1,"currency":"xaf","gateway":"sandbox"}`, "", 422, "currency"},
		{"currency unknown", `{"amount":1,"currency":"ABC","gateway":"sandbox"}`, "", 422, "currency"},
		{"currency wrong type", `{"amount":1,"currency":5,"gateway":"sandbox"}`, "", 400, "currency"},
		{"gateway unknown", `{"amount":1,"currency":"XAF","gateway":"paypal"}`, "", 422, "gateway"},
		{"unknown field", `{"amount":1,"currency":"XAF","gateway":"sandbox","amout":2}`, "", 400, "amout"},
		{"reference too long", `{"amount":1,"currency":"XAF","gateway":"sandbox","reference":"` + long + `"}`, "", 422, "reference"},
		{"metadata not strings", `{"amount":1,"currency":"XAF","gateway":"sandbox","metadata":{"a":1}}`, "", 400, "metadata.a"},
		{"metadata value too long", `{"amount":1,"currency":"XAF","gateway":"sandbox","metadata":{"a":"` + strings.Repeat("v", 501) + `"}}`, "", 422, "metadata.a"},
		{"control character", `{"amount":1,"currency":"XAF","gateway":"sandbox","reference":"a\u0000b"}`, "", 400, "reference"},
		{"invalid UTF-8", "{\"amount\":1,\"currency\":\"XAF\",\"gateway\":\"sandbox\",\"reference\":\"\xff\xfe\"}", "", 400, ""},
		{"wrong content type", `{"amount":1,"currency":"XAF","gateway":"sandbox"}`, "text/plain", 415, ""},
		{"form content type", `amount=1&currency=XAF`, "application/x-www-form-urlencoded", 415, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := []string{}
			if tc.ctype != "" {
				headers = append(headers, "Content-Type", tc.ctype)
			}
			res := a.do("POST", "/v1/payments", tc.body, headers...)
			require.Equal(t, tc.status, res.Code, "%s", res.Body)
			detail := res.errorOf(t)
			if tc.param != "" {
				require.Equal(t, tc.param, detail["param"], "%s", res.Body)
			}
		})
	}
	require.Equal(t, 0, a.count(`SELECT count(*) FROM payments`))
	require.Equal(t, 0, a.count(`SELECT count(*) FROM events`))
	require.Equal(t, 0, a.count(`SELECT count(*) FROM river_job`))
}

func TestPayoutCreateAndSimulate(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("POST", "/v1/payouts", map[string]any{
		"amount": 2500, "currency": "XAF", "provider": "sandbox",
		"recipient": map[string]string{"phone": "+24177000000", "name": "Awa"},
	})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	po := res.json(t)
	require.Equal(t, "payout", po["object"])
	require.Equal(t, "PENDING", po["status"])
	id := po["id"].(string)

	for _, s := range []string{"PROCESSING", "SUCCEEDED"} {
		res = a.do("POST", "/v1/payouts/"+id+"/simulate", map[string]any{"status": s})
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	}
	res = a.do("POST", "/v1/payouts/"+id+"/simulate", map[string]any{"status": "FAILED"})
	require.Equal(t, http.StatusConflict, res.Code)

	res = a.do("GET", "/v1/payouts?status=SUCCEEDED", nil)
	require.Equal(t, http.StatusOK, res.Code)
	require.Len(t, res.json(t)["data"], 1)

	bad := a.do("POST", "/v1/payouts", map[string]any{"amount": 2500, "currency": "XAF", "provider": "paypal", "recipient": map[string]string{"phone": "1"}})
	require.Equal(t, 422, bad.Code)
	require.Equal(t, "provider", bad.errorOf(t)["param"])
	bad = a.do("POST", "/v1/payouts", map[string]any{"amount": 2500, "currency": "XAF", "provider": "moneroo"})
	require.Equal(t, 422, bad.Code)
	require.Equal(t, "recipient", bad.errorOf(t)["param"])
}

func TestOtherMerchantsObjectsAnswer404(t *testing.T) {
	t.Parallel()
	a := setup(t)
	id := a.createPayment(1000)
	var eventID string
	require.NoError(t, a.store.Pool.QueryRow(context.Background(), `SELECT id FROM events LIMIT 1`).Scan(&eventID))
	other := a.otherMerchantKey()
	as := []string{"Authorization", "Bearer " + other}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/payments/" + id},
		{"POST", "/v1/payments/" + id + "/cancel"},
		{"POST", "/v1/payments/" + id + "/simulate"},
		{"GET", "/v1/events/" + eventID},
		{"GET", "/v1/payouts/" + id},
		{"GET", "/v1/payments/not-a-uuid"},
		{"GET", "/v1/payments/..%2F..%2Fetc%2Fpasswd"},
	} {
		var body any
		if r.path == "/v1/payments/"+id+"/simulate" {
			body = map[string]any{"status": "SUCCEEDED"}
		}
		res := a.do(r.method, r.path, body, as...)
		require.Equal(t, http.StatusNotFound, res.Code, "%s %s: %s", r.method, r.path, res.Body)
		require.Equal(t, "resource_missing", res.errorOf(t)["code"])
		require.NotContains(t, string(res.Body), "5000")
	}
	list := a.do("GET", "/v1/payments", nil, as...)
	require.Equal(t, http.StatusOK, list.Code)
	require.Empty(t, list.json(t)["data"])
	require.Equal(t, "PENDING", a.do("GET", "/v1/payments/"+id, nil).json(t)["status"])
}

func TestPaymentListPagination(t *testing.T) {
	t.Parallel()
	a := setup(t)
	var ids []string
	for i := range 25 {
		ids = append(ids, a.createPayment(100+i))
	}
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/payments?limit=10"
		if cursor != "" {
			path += "&starting_after=" + cursor
		}
		res := a.do("GET", path, nil)
		require.Equal(t, http.StatusOK, res.Code)
		body := res.json(t)
		data := body["data"].([]any)
		for _, d := range data {
			seen = append(seen, d.(map[string]any)["id"].(string))
		}
		if !body["has_more"].(bool) {
			require.Equal(t, 2, page)
			break
		}
		cursor = seen[len(seen)-1]
	}
	require.Len(t, seen, 25)
	for i := range ids { // newest first
		require.Equal(t, ids[len(ids)-1-i], seen[i])
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "starting_after=nope", "status=PAID"} {
		res := a.do("GET", "/v1/payments?"+q, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Code, "a bad value is 422, like a bad field: %s", q)
		res.errorOf(t)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := setup(t)
	body := `{"amount":5000,"currency":"XAF","gateway":"sandbox"}`

	first := a.do("POST", "/v1/payments", body, "Idempotency-Key", "order-42")
	require.Equal(t, http.StatusCreated, first.Code)
	require.Empty(t, first.Header.Get("Idempotent-Replayed"))

	again := a.do("POST", "/v1/payments", body, "Idempotency-Key", "order-42")
	require.Equal(t, http.StatusCreated, again.Code)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(first.Body), string(again.Body))

	// The same request spelled another way (keys reordered, spaces, a
	// nested object's keys too) is the same request: a replay, not a 409.
	meta := `{"amount":5000,"currency":"XAF","gateway":"sandbox","metadata":{"a":"1","b":"2"}}`
	first = a.do("POST", "/v1/payments", meta, "Idempotency-Key", "order-44")
	require.Equal(t, http.StatusCreated, first.Code)
	respelled := a.do("POST", "/v1/payments", " {\n \"metadata\": {\"b\":\"2\", \"a\":\"1\"}, \"gateway\":\"sandbox\",\"currency\" : \"XAF\", \"amount\":5000 }",
		"Idempotency-Key", "order-44")
	require.Equal(t, http.StatusCreated, respelled.Code, "%s", respelled.Body)
	require.Equal(t, "true", respelled.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(first.Body), string(respelled.Body))

	other := a.do("POST", "/v1/payments", `{"amount":6000,"currency":"XAF","gateway":"sandbox"}`, "Idempotency-Key", "order-42")
	require.Equal(t, http.StatusConflict, other.Code)
	require.Equal(t, "idempotency_error", other.errorOf(t)["type"])

	// Keys are per merchant: another merchant may use the same one.
	res := a.do("POST", "/v1/payments", body, "Idempotency-Key", "order-42", "Authorization", "Bearer "+a.otherMerchantKey())
	require.Equal(t, http.StatusCreated, res.Code)
	require.Empty(t, res.Header.Get("Idempotent-Replayed"))

	tooLong := a.do("POST", "/v1/payments", body, "Idempotency-Key", strings.Repeat("k", 256))
	require.Equal(t, http.StatusBadRequest, tooLong.Code)
	// The bound is 255 characters, not bytes (é is two).
	accented := a.do("POST", "/v1/payments", body, "Idempotency-Key", strings.Repeat("é", 255))
	require.Equal(t, http.StatusCreated, accented.Code, "%s", accented.Body)
	tooLong = a.do("POST", "/v1/payments", body, "Idempotency-Key", strings.Repeat("é", 256))
	require.Equal(t, http.StatusBadRequest, tooLong.Code)

	// A rejected request stores nothing: the key stays free for a corrected one.
	bad := a.do("POST", "/v1/payments", `{"amount":-1,"currency":"XAF","gateway":"sandbox"}`, "Idempotency-Key", "order-43")
	require.Equal(t, 422, bad.Code)
	good := a.do("POST", "/v1/payments", body, "Idempotency-Key", "order-43")
	require.Equal(t, http.StatusCreated, good.Code)

	require.Equal(t, 5, a.count(`SELECT count(*) FROM payments`))
	require.Equal(t, 4, a.count(`SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1`, a.merchant.ID))
}

func TestIdempotencyKeyHeldByConcurrentRequestAnswers409(t *testing.T) {
	t.Parallel()
	a := setup(t)
	ctx := context.Background()
	// A request in flight holds the key's transaction lock; hold it the same way.
	conn, err := a.store.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1::text || '/' || $2, 74062))`, a.merchant.ID, "busy-key")
	require.NoError(t, err)
	res := a.do("POST", "/v1/payments", `{"amount":1,"currency":"XAF","gateway":"sandbox"}`, "Idempotency-Key", "busy-key")
	require.Equal(t, http.StatusConflict, res.Code)
	require.Equal(t, "idempotency_error", res.errorOf(t)["type"])
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1::text || '/' || $2, 74062))`, a.merchant.ID, "busy-key")
	require.NoError(t, err)
	require.Equal(t, 0, a.count(`SELECT count(*) FROM payments`))
}

func TestIdempotencyKeyConcurrentDuplicatesMakeOnePayment(t *testing.T) {
	t.Parallel()
	a := setup(t)
	const n = 16
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := a.do("POST", "/v1/payments", `{"amount":700,"currency":"XOF","gateway":"sandbox"}`, "Idempotency-Key", "storm")
			codes <- res.Code
		}()
	}
	wg.Wait()
	close(codes)
	tally := map[int]int{}
	for c := range codes {
		tally[c]++
	}
	require.Equal(t, n, tally[201]+tally[409], fmt.Sprint(tally))
	require.GreaterOrEqual(t, tally[201], 1)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM payments`))
	require.Equal(t, 1, a.count(`SELECT count(*) FROM events`))
}
