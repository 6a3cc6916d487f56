package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// setupAuth is setup with a second merchant; the first has one payment, so
// a list answered for it is told apart from the other's.
func setupAuth(t *testing.T) *apiTest {
	t.Helper()
	b := setup(t, withOtherMerchant())
	b.createPayment(5000)
	return b
}

// get sends GET path with only the headers given (name, value pairs).
func (a *apiTest) get(path string, headers ...string) *response {
	a.t.Helper()
	return serve(a.t, a.e, http.MethodGet, path, nil, headers...)
}

func paymentCount(t *testing.T, res *response) int {
	t.Helper()
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	var list struct{ Data []any }
	require.NoError(t, json.Unmarshal(res.Body, &list))
	return len(list.Data)
}

func TestAuthAcceptsAValidKey(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	for name, headers := range map[string][]string{
		"bearer":            {"Authorization", "Bearer " + b.key},
		"bearer lower case": {"Authorization", "bearer " + b.key},
		"x-api-key":         {"X-API-Key", b.key},
	} {
		require.Equal(t, 1, paymentCount(t, b.get("/v1/payments", headers...)), name)
	}
	// The key decides the merchant: B sees none of A's payments.
	require.Equal(t, 0, paymentCount(t, b.get("/v1/payments", "Authorization", "Bearer "+b.otherKey)))
}

func TestAuthRejects(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	revoked, err := b.store.MerchantCreate(context.Background(), "Revoked", "")
	require.NoError(t, err)
	dbtest.RevokeAPIKey(t, b.store, revoked.APIKey)

	for name, headers := range map[string][]string{
		"missing":                {},
		"empty bearer":           {"Authorization", "Bearer "},
		"wrong key":              {"Authorization", "Bearer bp_wrongwrongwrongwrongwrongwrongwrong"},
		"key with a byte more":   {"Authorization", "Bearer " + b.key + "x"},
		"revoked key":            {"Authorization", "Bearer " + revoked.APIKey},
		"revoked key, x-api-key": {"X-API-Key", revoked.APIKey},
		"basic scheme":           {"Authorization", "Basic " + b.key},
		"no scheme":              {"Authorization", b.key},
		"wrong x-api-key":        {"X-API-Key", "bp_nope"},
	} {
		for _, path := range []string{"/v1/payments", "/v1/no-such-route"} {
			res := b.get(path, headers...)
			detail := requireError(t, res, http.StatusUnauthorized, "authentication_error", "unauthorized")
			require.NotContains(t, detail, "param", name)
			// Missing, wrong and revoked keys are told apart by nothing.
			require.Equal(t, "a valid API key is required: Authorization: Bearer <key>", detail["message"], name)
		}
	}
}

func TestAuthUnknownRouteWithValidKeyIs404(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	res := b.get("/v1/no-such-route", "Authorization", "Bearer "+b.key)
	requireError(t, res, http.StatusNotFound, "invalid_request_error", "resource_missing")
}

// TestAPIKeyNeverLogged sends keys every way a client might, good and bad,
// and with the database down, and looks for them in the debug-level log.
func TestAPIKeyNeverLogged(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	const wrong = "bp_thisisawrongkeythatmustnotbelogged0"
	b.get("/v1/payments", "Authorization", "Bearer "+b.key)
	b.get("/v1/payments", "X-API-Key", b.key)
	b.get("/v1/payments/not-a-uuid", "Authorization", "Bearer "+b.key)
	b.get("/v1/payments", "Authorization", "Bearer "+wrong)
	b.get("/v1/payments", "Authorization", "Basic "+wrong)
	dbtest.RevokeAPIKey(t, b.store, b.key)
	b.get("/v1/payments", "Authorization", "Bearer "+b.key)
	b.store.Pool.Close() // now every lookup fails inside: a 5xx, logged in full
	res := b.get("/v1/payments", "Authorization", "Bearer "+b.otherKey)
	require.Equal(t, http.StatusInternalServerError, res.Code)

	logs := b.logs.String()
	require.Contains(t, logs, `"status":401`, "the requests were logged")
	require.Contains(t, logs, `"level":"ERROR"`)
	for _, key := range []string{b.key, b.otherKey, wrong} {
		secretPart := key[len("bp_")+6:] // what the stored prefix does not reveal
		require.NotContains(t, logs, secretPart)
	}
}
