package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
)

const adminToken = "admin-test-token"

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

var adminRoutes = []struct{ method, path string }{
	{"POST", "/admin/merchants"},
	{"POST", "/admin/payments/" + uuid.NewString() + "/status"},
	{"GET", "/admin/webhook-failures"},
	{"GET", "/admin/river"},
	{"GET", "/admin/river/"},
	{"GET", "/admin/river/jobs"},
	{"GET", "/admin/river/api/jobs?state=available"},
	{"POST", "/admin/river/api/jobs/cancel"},
}

func TestAdminRoutesAnswer404WithoutAdminToken(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{}))
	for _, r := range adminRoutes {
		res := b.admin(r.method, r.path, map[string]any{})
		requireError(t, res, http.StatusNotFound, "invalid_request_error", "resource_missing")
		require.Empty(t, res.Header.Get("WWW-Authenticate"), "%s %s", r.method, r.path)
	}
}

func TestAdminRoutesRequireTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	for _, r := range adminRoutes {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + b.key, basicAuth("admin", "wrong"), "Basic !!!"} {
			res := b.admin(r.method, r.path, map[string]any{}, "Authorization", auth)
			requireError(t, res, http.StatusUnauthorized, "authentication_error", db.EUnauthorized)
			// Browsers prompt for basic credentials on this challenge.
			require.Equal(t, `Basic realm="BoohPay admin", charset="UTF-8"`, res.Header.Get("WWW-Authenticate"))
		}
	}
	// The token works as a bearer and as a basic-auth password, any user.
	for _, auth := range []string{"Bearer " + adminToken, "bearer " + adminToken, basicAuth("ops", adminToken), basicAuth("", adminToken)} {
		res := b.admin("GET", "/admin/webhook-failures", nil, "Authorization", auth)
		require.Equal(t, http.StatusOK, res.Code, "%s: %s", auth, res.Body)
	}
}

func TestAdminRefusesCrossOriginBrowserWrites(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	// A page on another site cannot use the operator's remembered basic
	// credentials to write.
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example.com"},
	} {
		res := b.admin("POST", "/admin/merchants", map[string]any{"name": "Evil"},
			"Authorization", basicAuth("admin", adminToken), h[0], h[1])
		require.Equal(t, http.StatusForbidden, res.Code, "%v: %s", h, res.Body)
		res = b.admin("POST", "/admin/river/api/jobs/cancel", map[string]any{"ids": []string{"1"}},
			"Authorization", basicAuth("admin", adminToken), h[0], h[1])
		require.Equal(t, http.StatusForbidden, res.Code, "%v: %s", h, res.Body)
	}
	require.Equal(t, 0, b.count(`SELECT count(*) FROM merchants WHERE name = 'Evil'`))
	// Same-origin browser requests and reads pass.
	res := b.admin("POST", "/admin/merchants", map[string]any{"name": "Same Origin"},
		"Authorization", basicAuth("admin", adminToken), "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	res = b.admin("GET", "/admin/webhook-failures", nil,
		"Authorization", basicAuth("admin", adminToken), "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
}

func TestAdminMerchantCreate(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))

	res := b.admin("POST", "/admin/merchants", map[string]any{"name": "Boutique Libreville", "webhook_url": "https://shop.example.com/hooks"})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	var m map[string]any
	require.NoError(t, json.Unmarshal(res.Body, &m))
	// The same shape as `boohpay merchant create`.
	require.ElementsMatch(t, []string{"id", "name", "api_key", "webhook_url", "webhook_secret"}, keys(m))
	require.Equal(t, "Boutique Libreville", m["name"])
	require.Equal(t, "https://shop.example.com/hooks", m["webhook_url"])
	require.True(t, strings.HasPrefix(m["webhook_secret"].(string), "whsec_"), m["webhook_secret"])
	// The key works on the merchant API, for that merchant.
	res = b.admin("GET", "/v1/payments", nil, "Authorization", "Bearer "+m["api_key"].(string))
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	stored, err := b.store.MerchantGetByAPIKey(context.Background(), m["api_key"].(string))
	require.NoError(t, err)
	require.Equal(t, m["id"], stored.ID.String())

	// No URL: no secret.
	res = b.admin("POST", "/admin/merchants", map[string]any{"name": "No Hooks"})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	m = res.json(t)
	require.Nil(t, m["webhook_url"])
	require.Nil(t, m["webhook_secret"])
}

func TestAdminMerchantCreateValidates(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	before := b.count(`SELECT count(*) FROM merchants`)
	for _, tc := range []struct {
		body        any
		status      int
		code, param string
	}{
		{map[string]any{}, 422, db.EValidation, "name"},
		{map[string]any{"name": "   "}, 422, db.EValidation, "name"},
		{map[string]any{"name": strings.Repeat("n", 201)}, 422, db.EValidation, "name"},
		{map[string]any{"name": "Tab\x00"}, 400, db.EInvalid, "name"},
		{map[string]any{"name": "X", "webhook_url": "ftp://shop.example.com"}, 422, db.EValidation, "webhook_url"},
		{map[string]any{"name": "X", "webhook_url": "http://127.0.0.1:8080/hooks"}, 422, db.EValidation, "webhook_url"},
		{map[string]any{"name": "X", "webhook_url": "http://169.254.169.254/latest"}, 422, db.EValidation, "webhook_url"},
		{map[string]any{"name": "X", "api_key": "mine"}, 400, db.EInvalid, "api_key"},
		{map[string]any{"name": 7}, 400, db.EInvalid, "name"},
	} {
		res := b.admin("POST", "/admin/merchants", tc.body)
		detail := requireError(t, res, tc.status, "invalid_request_error", tc.code)
		require.Equal(t, tc.param, detail["param"], "%v: %s", tc.body, res.Body)
	}
	require.Equal(t, before, b.count(`SELECT count(*) FROM merchants`))

	// WEBHOOK_ALLOW_PRIVATE_NETWORKS lets local URLs through, as `make run` needs.
	local := setup(t, withConfig(api.Config{AdminToken: adminToken, AllowPrivateNetworks: true}))
	res := local.admin("POST", "/admin/merchants", map[string]any{"name": "Local", "webhook_url": "http://127.0.0.1:8080/hooks"})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestAdminPaymentStatusOverride(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	id := b.createPayment(5000)
	path := "/admin/payments/" + id + "/status"

	res := b.admin("POST", path, map[string]any{"status": "SUCCEEDED", "reason": "  Moneroo support confirmed by phone, ticket 4411  "},
		"X-Request-Id", "req-override-1")
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	p := res.json(t)
	require.Equal(t, "payment", p["object"])
	require.Equal(t, "SUCCEEDED", p["status"])

	// The same outbox as every other transition: the event, its delivery
	// row and its River job, committed with the status.
	var eventID uuid.UUID
	require.NoError(t, b.store.Pool.QueryRow(context.Background(),
		`SELECT id FROM events WHERE object_id = $1 AND type = 'payment.succeeded'`, id).Scan(&eventID))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_deliveries d JOIN river_job j ON j.id = d.job_id
		WHERE d.event_id = $1 AND j.kind = 'webhook_delivery'`, eventID))

	// The reason is recorded, trimmed, with the move, the event and the request id.
	actions := b.adminActions(id)
	require.Len(t, actions, 1)
	a := actions[0]
	require.Equal(t, db.ActionPaymentStatusOverride, a.Action)
	require.Equal(t, b.merchant.ID, a.MerchantID)
	require.Equal(t, "PENDING", a.FromStatus)
	require.Equal(t, "SUCCEEDED", a.ToStatus)
	require.Equal(t, "Moneroo support confirmed by phone, ticket 4411", a.Reason)
	require.Equal(t, &eventID, a.EventID)
	require.Equal(t, "req-override-1", *a.RequestID)

	// The merchant sees the payment moved, as if a provider had said so.
	res = b.admin("GET", "/v1/payments/"+id, nil, "Authorization", "Bearer "+b.key)
	require.Equal(t, "SUCCEEDED", res.json(t)["status"])

	// Again to the same status: nothing changes, nothing is recorded.
	res = b.admin("POST", path, map[string]any{"status": "SUCCEEDED", "reason": "double click"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM admin_actions`))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM events WHERE object_id = $1 AND type = 'payment.succeeded'`, id))

	// The state machine still rules: SUCCEEDED cannot go back to PENDING.
	res = b.admin("POST", path, map[string]any{"status": "PENDING", "reason": "undo"})
	requireError(t, res, http.StatusConflict, "invalid_request_error", db.EInvalidTransition)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM admin_actions`))

	// A FAILED override may carry the failure_reason the merchant will see.
	other := b.createPayment(5000)
	res = b.admin("POST", "/admin/payments/"+other+"/status",
		map[string]any{"status": "FAILED", "reason": "provider lost the transaction", "failure_reason": "provider_error"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, "provider_error", res.json(t)["failure_reason"])
}

func TestAdminPaymentStatusOverrideValidates(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	id := b.createPayment(5000)
	path := "/admin/payments/" + id + "/status"
	for _, tc := range []struct {
		body        any
		status      int
		code, param string
	}{
		{map[string]any{"status": "SUCCEEDED"}, 422, db.EValidation, "reason"},
		{map[string]any{"status": "SUCCEEDED", "reason": " \n "}, 422, db.EValidation, "reason"},
		{map[string]any{"status": "SUCCEEDED", "reason": strings.Repeat("r", 1001)}, 422, db.EValidation, "reason"},
		{map[string]any{"status": "PAID", "reason": "x"}, 422, db.EValidation, "status"},
		{map[string]any{"reason": "x"}, 422, db.EValidation, "status"},
		{map[string]any{"status": "SUCCEEDED", "reason": "x", "merchant_id": "m"}, 400, db.EInvalid, "merchant_id"},
	} {
		res := b.admin("POST", path, tc.body)
		detail := requireError(t, res, tc.status, "invalid_request_error", tc.code)
		require.Equal(t, tc.param, detail["param"], "%v: %s", tc.body, res.Body)
	}
	for _, p := range []string{uuid.NewString(), "not-a-uuid"} {
		res := b.admin("POST", "/admin/payments/"+p+"/status", map[string]any{"status": "SUCCEEDED", "reason": "x"})
		requireError(t, res, http.StatusNotFound, "invalid_request_error", "resource_missing")
	}
	require.Equal(t, 0, b.count(`SELECT count(*) FROM admin_actions`))
	require.Equal(t, 0, b.count(`SELECT count(*) FROM payments WHERE status <> 'PENDING'`))
}

// failedDelivery writes a FAILED delivery of a fresh event for merchantID,
// failed failedAgo ago.
func (b *apiTest) failedDelivery(merchantID uuid.UUID, failedAgo time.Duration) uuid.UUID {
	b.t.Helper()
	ctx := context.Background()
	eventID, deliveryID := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	at := time.Now().Add(-failedAgo)
	payload := `{"id":"` + eventID.String() + `","event":"payment.failed","timestamp":"2026-01-01T00:00:00Z","data":{}}`
	_, err := b.store.Pool.Exec(ctx, `WITH e AS (
			INSERT INTO events (id, merchant_id, type, payload, created_at) VALUES ($1, $2, 'payment.failed', $3, $4))
		INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, attempts,
			last_attempt_at, next_retry_at, http_status_code, error_message, created_at, updated_at)
		VALUES ($5, $2, $1, 'payment.failed', $3, 'FAILED', 6, $4, NULL, 503, 'HTTP 503', $4, $4)`,
		eventID, merchantID, payload, at, deliveryID)
	require.NoError(b.t, err)
	return deliveryID
}

func TestAdminWebhookFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	other, err := b.store.MerchantCreate(context.Background(), "Other Shop", "https://other.example.com/hooks")
	require.NoError(t, err)
	newest := b.failedDelivery(b.merchant.ID, time.Minute)
	middle := b.failedDelivery(other.Merchant.ID, time.Hour)
	oldest := b.failedDelivery(b.merchant.ID, 2*time.Hour)
	b.failedDelivery(b.merchant.ID, 8*24*time.Hour) // not recent: out of the view

	ids := func(res *response) []string {
		t.Helper()
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
		var body struct {
			Object  string
			Data    []map[string]any
			HasMore bool `json:"has_more"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &body))
		require.Equal(t, "list", body.Object)
		var out []string
		for _, d := range body.Data {
			out = append(out, d["delivery_id"].(string))
		}
		if body.HasMore {
			out = append(out, "…")
		}
		return out
	}

	res := b.admin("GET", "/admin/webhook-failures", nil)
	require.Equal(t, []string{newest.String(), middle.String(), oldest.String()}, ids(res))
	first := res.json(t)["data"].([]any)[0].(map[string]any)
	require.Equal(t, b.merchant.Name, first["merchant_name"])
	require.Equal(t, "https://merchant.example.com/hooks", first["webhook_url"])
	require.Equal(t, "HTTP 503", first["error_message"])
	require.EqualValues(t, 503, first["http_status_code"])
	require.EqualValues(t, 6, first["attempts"])

	// Paging, most recently failed first.
	require.Equal(t, []string{newest.String(), "…"}, ids(b.admin("GET", "/admin/webhook-failures?limit=1", nil)))
	require.Equal(t, []string{middle.String(), oldest.String()},
		ids(b.admin("GET", "/admin/webhook-failures?starting_after="+newest.String(), nil)))
	// One merchant's.
	require.Equal(t, []string{newest.String(), oldest.String()},
		ids(b.admin("GET", "/admin/webhook-failures?merchant_id="+b.merchant.ID.String(), nil)))

	res = b.admin("GET", "/admin/webhook-failures?merchant_id=acme", nil)
	requireError(t, res, http.StatusUnprocessableEntity, "invalid_request_error", db.EValidation)
	res = b.admin("GET", "/admin/webhook-failures?limit=500", nil)
	requireError(t, res, http.StatusUnprocessableEntity, "invalid_request_error", db.EValidation)
}

func TestRiverUIBehindAdminToken(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	job, err := b.river.Insert(context.Background(), db.DeliveryArgs{DeliveryID: uuid.New()}, nil)
	require.NoError(t, err)

	// The page, under its prefix, with its assets.
	res := b.admin("GET", "/admin/river/", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Contains(t, string(res.Body), `"apiUrl":"/admin/river/api"`)
	res = b.admin("GET", "/admin/river", nil)
	require.Equal(t, http.StatusMovedPermanently, res.Code)
	require.Equal(t, "/admin/river/", res.Header.Get("Location"))

	// Its API lists the job and can cancel it.
	res = b.admin("GET", "/admin/river/api/jobs?state=available", nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Contains(t, string(res.Body), `"kind":"webhook_delivery"`)
	res = b.admin("POST", "/admin/river/api/jobs/cancel", map[string]any{"ids": []string{jsonInt(job.Job.ID)}})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM river_job WHERE id = $1 AND state = 'cancelled'`, job.Job.ID))
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
