package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWebhookEndpointGetNeverShowsTheSecret(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("GET", "/v1/webhook-endpoint", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	body := res.json(t)
	require.Equal(t, "webhook_endpoint", body["object"])
	require.Equal(t, "https://merchant.example.com/hooks", body["url"])
	require.NotContains(t, body, "secret")
	require.Nil(t, body["previous_secret_expires_at"])
	require.NotContains(t, string(res.Body), *a.merchant.WebhookSecret)
}

func TestWebhookEndpointPutGeneratesTheSecretOnce(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.key = a.otherMerchantKey() // a merchant with no endpoint yet

	res := a.do("GET", "/v1/webhook-endpoint", nil)
	require.Equal(t, http.StatusOK, res.Code)
	require.Nil(t, res.json(t)["url"])

	res = a.do("PUT", "/v1/webhook-endpoint", map[string]any{"url": "https://shop.example.com/webhooks"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	body := res.json(t)
	require.Equal(t, "https://shop.example.com/webhooks", body["url"])
	secret, _ := body["secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), "the first set shows the new secret: %s", res.Body)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_secret = $1`, secret))

	// Changing the URL keeps the secret and does not show it again.
	res = a.do("PUT", "/v1/webhook-endpoint", map[string]any{"url": "https://shop.example.com/v2/webhooks"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.NotContains(t, res.json(t), "secret")
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_secret = $1 AND webhook_url = 'https://shop.example.com/v2/webhooks'`, secret))
}

func TestWebhookEndpointPutRefusesBadAndPrivateURLs(t *testing.T) {
	t.Parallel()
	a := setup(t) // WEBHOOK_ALLOW_PRIVATE_NETWORKS unset
	for _, tt := range []struct {
		body       string
		wantStatus int
		wantParam  string
	}{
		{`{}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":""}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"ftp://shop.example.com/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"not a url"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"https://user:pass@shop.example.com/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"http://127.0.0.1:8080/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"http://localhost/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"http://169.254.169.254/latest/meta-data"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"http://10.0.0.7/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"http://[::1]/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"https://shop.example.com","secret":"x"}`, http.StatusBadRequest, "secret"},
		{`{"url":42}`, http.StatusBadRequest, "url"},
	} {
		res := a.do("PUT", "/v1/webhook-endpoint", tt.body)
		require.Equal(t, tt.wantStatus, res.Code, "%s: %s", tt.body, res.Body)
		require.Equal(t, tt.wantParam, res.errorOf(t)["param"], tt.body)
	}
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_url = 'https://merchant.example.com/hooks'`), "unchanged")
}

func TestWebhookEndpointRotateSecret(t *testing.T) {
	t.Parallel()
	a := setup(t)
	old := *a.merchant.WebhookSecret
	res := a.do("POST", "/v1/webhook-endpoint/rotate-secret", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	body := res.json(t)
	secret, _ := body["secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"))
	require.NotEqual(t, old, secret)
	expires, err := time.Parse(time.RFC3339Nano, body["previous_secret_expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), expires, time.Minute)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_secret = $1 AND previous_webhook_secret = $2`, secret, old))

	res = a.do("GET", "/v1/webhook-endpoint", nil)
	require.NotContains(t, res.json(t), "secret")
	require.NotNil(t, res.json(t)["previous_secret_expires_at"])

	// No endpoint, nothing to rotate.
	res = a.do("POST", "/v1/webhook-endpoint/rotate-secret", nil, "Authorization", "Bearer "+a.otherMerchantKey())
	require.Equal(t, http.StatusConflict, res.Code, "%s", res.Body)
}

func TestWebhookEndpointTestSendsAnEvent(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("POST", "/v1/webhook-endpoint/test", nil, "Idempotency-Key", "test-1")
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	d := res.json(t)
	require.Equal(t, "webhook_delivery", d["object"])
	require.Equal(t, "webhook.test", d["event_type"])
	require.Equal(t, "PENDING", d["status"])
	require.Equal(t, []any{}, d["attempts"])
	payload := d["payload"].(map[string]any)
	require.Equal(t, "webhook.test", payload["event"])
	require.Equal(t, d["event_id"], payload["id"])
	require.Equal(t, 1, a.count(`SELECT count(*) FROM events WHERE type = 'webhook.test'`))
	require.Equal(t, 1, a.count(`SELECT count(*) FROM river_job j JOIN webhook_deliveries d ON d.job_id = j.id
		WHERE d.id = $1 AND j.kind = 'webhook_delivery'`, d["id"]))

	replay := a.do("POST", "/v1/webhook-endpoint/test", nil, "Idempotency-Key", "test-1")
	require.Equal(t, http.StatusCreated, replay.Code)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, d["id"], replay.json(t)["id"])
	require.Equal(t, 1, a.count(`SELECT count(*) FROM events WHERE type = 'webhook.test'`))

	res = a.do("POST", "/v1/webhook-endpoint/test", nil, "Authorization", "Bearer "+a.otherMerchantKey())
	require.Equal(t, http.StatusConflict, res.Code, "no endpoint: %s", res.Body)
}

func TestWebhookDeliveriesListGetRetry(t *testing.T) {
	t.Parallel()
	a := setup(t)
	ctx := context.Background()
	first := a.do("POST", "/v1/webhook-endpoint/test", nil).json(t)["id"].(string)
	second := a.do("POST", "/v1/webhook-endpoint/test", nil).json(t)["id"].(string)
	// What the worker leaves behind after two failed attempts and a final one.
	_, err := a.store.Pool.Exec(ctx, `INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, error, response_body)
		VALUES ($1, 1, 500, 12, 'HTTP 500', 'oops'), ($1, 2, NULL, 10000, 'no response within 10s', NULL)`, first)
	require.NoError(t, err)
	_, err = a.store.Pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'FAILED', attempts = 2, error_message = 'no response within 10s',
		last_attempt_at = now(), next_retry_at = NULL WHERE id = $1`, first)
	require.NoError(t, err)

	res := a.do("GET", "/v1/webhook-deliveries", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	list := res.json(t)
	data := list["data"].([]any)
	require.Len(t, data, 2)
	require.Equal(t, second, data[0].(map[string]any)["id"], "newest first")

	res = a.do("GET", "/v1/webhook-deliveries?status=FAILED", nil)
	data = res.json(t)["data"].([]any)
	require.Len(t, data, 1)
	require.Equal(t, first, data[0].(map[string]any)["id"])
	require.Len(t, data[0].(map[string]any)["attempts"], 2)

	res = a.do("GET", "/v1/webhook-deliveries?status=failed", nil)
	require.Equal(t, http.StatusUnprocessableEntity, res.Code)
	require.Equal(t, "status", res.errorOf(t)["param"])

	res = a.do("GET", "/v1/webhook-deliveries/"+first, nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	d := res.json(t)
	require.Equal(t, "FAILED", d["status"])
	require.EqualValues(t, 2, d["attempt_count"])
	require.Equal(t, "no response within 10s", d["error_message"])
	attempts := d["attempts"].([]any)
	require.Len(t, attempts, 2)
	a1 := attempts[0].(map[string]any)
	require.EqualValues(t, 1, a1["attempt"])
	require.EqualValues(t, 500, a1["status_code"])
	require.EqualValues(t, 12, a1["duration_ms"])
	require.Equal(t, "HTTP 500", a1["error"])
	require.Equal(t, "oops", a1["response_body"])
	a2 := attempts[1].(map[string]any)
	require.Nil(t, a2["status_code"])
	require.Nil(t, a2["response_body"])

	// Another merchant sees none of it.
	other := a.otherMerchantKey()
	res = a.do("GET", "/v1/webhook-deliveries/"+first, nil, "Authorization", "Bearer "+other)
	require.Equal(t, http.StatusNotFound, res.Code)
	res = a.do("POST", "/v1/webhook-deliveries/"+first+"/retry", nil, "Authorization", "Bearer "+other)
	require.Equal(t, http.StatusNotFound, res.Code)
	res = a.do("GET", "/v1/webhook-deliveries", nil, "Authorization", "Bearer "+other)
	require.Empty(t, res.json(t)["data"])
	require.Equal(t, http.StatusNotFound, a.do("GET", "/v1/webhook-deliveries/not-a-uuid", nil).Code)

	// A delivery still in its cycle cannot be retried.
	res = a.do("POST", "/v1/webhook-deliveries/"+second+"/retry", nil)
	require.Equal(t, http.StatusConflict, res.Code, "%s", res.Body)

	var oldJob int64
	require.NoError(t, a.store.Pool.QueryRow(ctx, `SELECT job_id FROM webhook_deliveries WHERE id = $1`, first).Scan(&oldJob))
	res = a.do("POST", "/v1/webhook-deliveries/"+first+"/retry", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	d = res.json(t)
	require.Equal(t, "PENDING", d["status"])
	require.EqualValues(t, 2, d["attempt_count"], "the history is kept")
	require.Len(t, d["attempts"], 2)
	require.NotNil(t, d["next_retry_at"])
	require.Equal(t, 1, a.count(`SELECT count(*) FROM webhook_deliveries d JOIN river_job j ON j.id = d.job_id
		WHERE d.id = $1 AND j.id <> $2 AND j.state = 'available' AND j.args->>'delivery_id' = $1::text`, first, oldJob))
}
