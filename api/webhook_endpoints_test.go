package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWebhookEndpointsCreateListGetPatchDelete(t *testing.T) {
	t.Parallel()
	a := setup(t)

	// The default endpoint (merchants.webhook_url) is listed, marked default.
	res := a.do("GET", "/v1/webhook-endpoints", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	data := res.json(t)["data"].([]any)
	require.Len(t, data, 1)
	def := data[0].(map[string]any)
	require.Equal(t, true, def["default"])
	require.Equal(t, "https://merchant.example.com/hooks", def["url"])
	require.Equal(t, []any{"*"}, def["enabled_events"])
	require.Equal(t, "enabled", def["status"])
	require.NotContains(t, def, "secret")

	res = a.do("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://shop.example.com/payments",
		"description": "payments only", "enabled_events": []string{"payment.succeeded", "payment.failed"}})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	ep := res.json(t)
	id := ep["id"].(string)
	require.Equal(t, "webhook_endpoint", ep["object"])
	require.Equal(t, false, ep["default"])
	require.Equal(t, []any{"payment.succeeded", "payment.failed"}, ep["enabled_events"])
	require.True(t, strings.HasPrefix(ep["secret"].(string), "whsec_"), "the secret is shown at creation")
	require.Nil(t, ep["disabled_reason"])

	res = a.do("GET", "/v1/webhook-endpoints/"+id, nil)
	require.Equal(t, http.StatusOK, res.Code)
	require.NotContains(t, res.json(t), "secret", "and never again")

	res = a.do("PATCH", "/v1/webhook-endpoints/"+id, map[string]any{"disabled": true, "enabled_events": []string{"*"}})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	ep = res.json(t)
	require.Equal(t, "disabled", ep["status"])
	require.Equal(t, "merchant", ep["disabled_reason"])
	require.Equal(t, []any{"*"}, ep["enabled_events"])
	require.Equal(t, "payments only", ep["description"], "absent fields are unchanged")

	res = a.do("PATCH", "/v1/webhook-endpoints/"+id, map[string]any{"disabled": false, "description": nil})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	ep = res.json(t)
	require.Equal(t, "enabled", ep["status"])
	require.Nil(t, ep["disabled_reason"])
	require.Nil(t, ep["description"], "null clears it")

	// Another merchant sees none of it.
	other := a.otherMerchantKey()
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		res = a.do(m, "/v1/webhook-endpoints/"+id, map[string]any{}, "Authorization", "Bearer "+other)
		require.Equal(t, http.StatusNotFound, res.Code, m)
	}

	res = a.do("DELETE", "/v1/webhook-endpoints/"+id, nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, true, res.json(t)["deleted"])
	require.Equal(t, http.StatusNotFound, a.do("GET", "/v1/webhook-endpoints/"+id, nil).Code)
	require.Len(t, a.do("GET", "/v1/webhook-endpoints", nil).json(t)["data"], 1)
}

func TestWebhookEndpointsRefuseBadInput(t *testing.T) {
	t.Parallel()
	a := setup(t)
	for _, tt := range []struct {
		body       string
		wantStatus int
		wantParam  string
	}{
		{`{}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"http://10.0.0.7/hooks"}`, http.StatusUnprocessableEntity, "url"},
		{`{"url":"https://shop.example.com","enabled_events":["payment.exploded"]}`, http.StatusUnprocessableEntity, "enabled_events"},
		{`{"url":"https://shop.example.com","enabled_events":["*","payment.failed"]}`, http.StatusUnprocessableEntity, "enabled_events"},
		{`{"url":"https://shop.example.com","enabled_events":[]}`, http.StatusUnprocessableEntity, "enabled_events"},
		{`{"url":"https://shop.example.com","enabled_events":"*"}`, http.StatusBadRequest, "enabled_events"},
		{`{"url":"https://shop.example.com","description":"` + strings.Repeat("x", 501) + `"}`, http.StatusUnprocessableEntity, "description"},
		{`{"url":"https://shop.example.com","secret":"mine"}`, http.StatusBadRequest, "secret"},
	} {
		res := a.do("POST", "/v1/webhook-endpoints", tt.body)
		require.Equal(t, tt.wantStatus, res.Code, "%s: %s", tt.body, res.Body)
		require.Equal(t, tt.wantParam, res.errorOf(t)["param"], tt.body)
	}
	require.Equal(t, 1, a.count(`SELECT count(*) FROM webhook_endpoints`), "nothing written")

	// At most 16 endpoints, the default one included.
	for i := 0; i < 15; i++ {
		res := a.do("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://shop.example.com/hooks"})
		require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	}
	res := a.do("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://shop.example.com/hooks"})
	require.Equal(t, http.StatusConflict, res.Code, "%s", res.Body)

	id := a.do("GET", "/v1/webhook-endpoints", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	for _, body := range []string{`{"previous_secret_expires_in":-1}`, `{"previous_secret_expires_in":604801}`} {
		res = a.do("POST", "/v1/webhook-endpoints/"+id+"/rotate-secret", body)
		require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%s", res.Body)
		require.Equal(t, "previous_secret_expires_in", res.errorOf(t)["param"])
	}
	for _, body := range []string{`{}`, `{"since":"yesterday"}`, `{"since":"2026-11-27T10:00:00Z","until":"2026-11-27T09:00:00Z"}`} {
		res = a.do("POST", "/v1/webhook-endpoints/"+id+"/recover", body)
		require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%s", res.Body)
	}
}

func TestWebhookEndpointRotateSecretGracePeriod(t *testing.T) {
	t.Parallel()
	a := setup(t)
	id := a.do("GET", "/v1/webhook-endpoint", nil).json(t)["id"].(string)
	res := a.do("POST", "/v1/webhook-endpoints/"+id+"/rotate-secret", map[string]any{"previous_secret_expires_in": 3600})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	ep := res.json(t)
	expires, err := time.Parse(time.RFC3339Nano, ep["previous_secret_expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), expires, time.Minute)
	// The default endpoint's secrets are the merchant's columns.
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_secret = $1 AND previous_webhook_secret = $2`,
		ep["secret"], *a.merchant.WebhookSecret))

	res = a.do("POST", "/v1/webhook-endpoints/"+id+"/rotate-secret", map[string]any{"previous_secret_expires_in": 0})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Nil(t, res.json(t)["previous_secret_expires_at"], "0 ends the grace period at once")
}

// The old operator SQL keeps working as written: it sets the default
// endpoint, which the API and the fan-out then use.
func TestWebhookEndpointOldOperatorSQL(t *testing.T) {
	t.Parallel()
	a := setup(t)
	ctx := context.Background()
	_, err := a.store.Pool.Exec(ctx, `UPDATE merchants SET webhook_url = 'https://merchant.example.com/webhooks', webhook_secret = 'secret-key' WHERE id = '`+a.merchant.ID.String()+`'`)
	require.NoError(t, err)
	res := a.do("GET", "/v1/webhook-endpoint", nil)
	require.Equal(t, "https://merchant.example.com/webhooks", res.json(t)["url"])
	require.Equal(t, 1, a.count(`SELECT count(*) FROM webhook_endpoints WHERE is_default AND secret = 'secret-key'
		AND url = 'https://merchant.example.com/webhooks' AND deleted_at IS NULL`))

	// A test event reaches that endpoint only.
	a.do("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://shop.example.com/other"})
	res = a.do("POST", "/v1/webhook-endpoint/test", nil)
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.event_type = 'webhook.test' AND e.is_default`))
	require.Equal(t, 1, a.count(`SELECT count(*) FROM webhook_deliveries WHERE event_type = 'webhook.test'`))

	// Clearing the URL by SQL removes the default endpoint; setting it again brings one back.
	_, err = a.store.Pool.Exec(ctx, `UPDATE merchants SET webhook_url = NULL WHERE id = $1`, a.merchant.ID)
	require.NoError(t, err)
	require.Nil(t, a.do("GET", "/v1/webhook-endpoint", nil).json(t)["url"])
	require.Len(t, a.do("GET", "/v1/webhook-endpoints", nil).json(t)["data"], 1)
	res = a.do("PUT", "/v1/webhook-endpoint", map[string]any{"url": "https://shop.example.com/v2"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.NotContains(t, res.json(t), "secret", "the merchant's secret is kept")
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_url = 'https://shop.example.com/v2' AND webhook_secret = 'secret-key'`))

	// A PATCH of the default endpoint's URL is the merchant's webhook_url too.
	id := res.json(t)["id"].(string)
	res = a.do("PATCH", "/v1/webhook-endpoints/"+id, map[string]any{"url": "https://shop.example.com/v3"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE webhook_url = 'https://shop.example.com/v3'`))
	// Deleting it clears webhook_url.
	require.Equal(t, http.StatusOK, a.do("DELETE", "/v1/webhook-endpoints/"+id, nil).Code)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM merchants WHERE id = $1 AND webhook_url IS NULL`, a.merchant.ID))
}

func TestWebhookEndpointTestAndDeliveryFilters(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://shop.example.com/payouts",
		"enabled_events": []string{"payout.succeeded"}})
	id := res.json(t)["id"].(string)
	res = a.do("POST", "/v1/webhook-endpoints/"+id+"/test", nil)
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	d := res.json(t)
	require.Equal(t, id, d["endpoint_id"], "a test reaches the endpoint whatever its filter")
	require.Equal(t, 1, a.count(`SELECT count(*) FROM webhook_deliveries`), "and only that endpoint")

	a.createPayment(5000) // payment.pending: the default endpoint only
	res = a.do("GET", "/v1/webhook-deliveries?endpoint_id="+id, nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	data := res.json(t)["data"].([]any)
	require.Len(t, data, 1)
	require.Equal(t, d["id"], data[0].(map[string]any)["id"])
	res = a.do("GET", "/v1/webhook-deliveries?event_id="+d["event_id"].(string), nil)
	require.Len(t, res.json(t)["data"], 1)
	require.Len(t, a.do("GET", "/v1/webhook-deliveries", nil).json(t)["data"], 2)
	res = a.do("GET", "/v1/webhook-deliveries?endpoint_id=nope", nil)
	require.Equal(t, http.StatusBadRequest, res.Code)
	require.Equal(t, "endpoint_id", res.errorOf(t)["param"])

	// A disabled endpoint takes no test.
	a.do("PATCH", "/v1/webhook-endpoints/"+id, map[string]any{"disabled": true})
	require.Equal(t, http.StatusConflict, a.do("POST", "/v1/webhook-endpoints/"+id+"/test", nil).Code)
	require.Equal(t, http.StatusConflict, a.do("POST", "/v1/webhook-endpoints/"+id+"/recover",
		map[string]any{"since": "2026-01-01T00:00:00Z"}).Code)
}

// Recover reaches back before the endpoint existed: events emitted then
// are delivered to it once, and a second recover finds nothing more.
func TestWebhookEndpointRecoverEventsFromBeforeItExisted(t *testing.T) {
	t.Parallel()
	a := setup(t)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	a.createPayment(5000) // payment.pending, delivered to the default endpoint only
	a.createPayment(7000)
	id := a.do("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://shop.example.com/late",
		"enabled_events": []string{"payment.pending"}}).json(t)["id"].(string)
	require.Zero(t, a.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, id))

	res := a.do("POST", "/v1/webhook-endpoints/"+id+"/recover", map[string]any{"since": since})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.EqualValues(t, 2, res.json(t)["deliveries_created"])
	require.Equal(t, 2, a.count(`SELECT count(*) FROM webhook_deliveries d JOIN river_job j ON j.id = d.job_id
		WHERE d.endpoint_id = $1 AND d.status = 'PENDING'`, id), "each with its job, in the same transaction")

	res = a.do("POST", "/v1/webhook-endpoints/"+id+"/recover", map[string]any{"since": since})
	require.EqualValues(t, 0, res.json(t)["deliveries_created"], "under way: not recovered twice")
	require.Equal(t, 4, a.count(`SELECT count(*) FROM webhook_deliveries`))
}
