package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db/dbtest"
)

// TestAPIKeysCreateListRevoke: a merchant makes a key (shown once, in the
// create answer only), sees it in its list by prefix, uses it at once, and
// revokes it, effective on the very next request.
func TestAPIKeysCreateListRevoke(t *testing.T) {
	t.Parallel()
	a := setup(t)

	res := a.do("POST", "/v1/api-keys", map[string]any{"name": "billing service"})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	created := res.json(t)
	key := created["key"].(string)
	require.True(t, strings.HasPrefix(key, "bp_"))
	require.Equal(t, "api_key", created["object"])
	require.Equal(t, "billing service", created["name"])
	require.True(t, strings.HasPrefix(key, created["prefix"].(string)))
	require.Len(t, created["prefix"], len("bp_")+6)
	require.Nil(t, created["last_used_at"])
	require.Nil(t, created["revoked_at"])

	// Hashed at rest: the key appears in no column.
	require.Zero(t, a.count(`SELECT count(*) FROM api_keys k WHERE row_to_json(k)::text LIKE '%' || $1 || '%'`, key[3:]))

	// The new key works at once, and its use is recorded.
	res = serve(t, a.e, "GET", "/v1/api-keys", nil, "Authorization", "Bearer "+key)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	list := res.json(t)["data"].([]any)
	require.Len(t, list, 2)
	newest := list[0].(map[string]any)
	require.Equal(t, created["id"], newest["id"], "newest first")
	require.NotContains(t, newest, "key", "the key is shown only when created")
	require.NotNil(t, newest["last_used_at"])
	require.Nil(t, list[1].(map[string]any)["name"], "the merchant's first key has no name")

	// Revoked: the next request with it is refused, and lists no longer show it.
	res = a.do("DELETE", "/v1/api-keys/"+created["id"].(string), nil)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	require.NotNil(t, res.json(t)["revoked_at"])
	res = serve(t, a.e, "GET", "/v1/payments", nil, "X-API-Key", key)
	require.Equal(t, http.StatusUnauthorized, res.Code)
	require.Len(t, a.do("GET", "/v1/api-keys", nil).json(t)["data"], 1)
	res = a.do("DELETE", "/v1/api-keys/"+created["id"].(string), nil)
	require.Equal(t, http.StatusNotFound, res.Code, "revoking twice: it is gone")
}

// TestAPIKeysLastKeyCannotBeRevoked: a merchant cannot lock itself out; two
// concurrent revocations of its last two keys leave one standing.
func TestAPIKeysLastKeyCannotBeRevoked(t *testing.T) {
	t.Parallel()
	a := setup(t)
	only := a.do("GET", "/v1/api-keys", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	res := a.do("DELETE", "/v1/api-keys/"+only, nil)
	require.Equal(t, http.StatusConflict, res.Code, "%s", res.Body)
	require.Contains(t, res.errorOf(t)["message"], "last active API key")
	require.Equal(t, http.StatusOK, a.do("GET", "/v1/payments", nil).Code, "still usable")

	second := a.do("POST", "/v1/api-keys", nil).json(t)
	codes := make([]int, 2)
	var wg sync.WaitGroup
	// Each key revokes itself, so neither request's authentication depends
	// on which revoke commits first (a key revoked by the other request
	// would answer 401).
	for i, k := range []struct{ id, key string }{{only, a.key}, {second["id"].(string), second["key"].(string)}} {
		wg.Go(func() {
			codes[i] = serve(t, a.e, "DELETE", "/v1/api-keys/"+k.id, nil, "Authorization", "Bearer "+k.key).Code
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, codes)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND revoked_at IS NULL`, a.merchant.ID))
}

// TestAPIKeysWalls: another merchant's key id answers 404, like an id that
// exists nowhere, and is not revoked.
func TestAPIKeysWalls(t *testing.T) {
	t.Parallel()
	a := setup(t)
	other := a.otherMerchantKey()
	theirs := serve(t, a.e, "POST", "/v1/api-keys", nil, "Authorization", "Bearer "+other).json(t)["id"].(string)
	res := a.do("DELETE", "/v1/api-keys/"+theirs, nil)
	require.Equal(t, http.StatusNotFound, res.Code)
	require.Equal(t, "resource_missing", res.errorOf(t)["code"])
	require.Equal(t, 0, a.count(`SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL`))
	for _, k := range a.do("GET", "/v1/api-keys", nil).json(t)["data"].([]any) {
		require.NotEqual(t, theirs, k.(map[string]any)["id"])
	}
}

// TestAPIKeysCreateRefusals: the create answer cannot be replayed (the key is
// never stored), and a name is bounded text.
func TestAPIKeysCreateRefusals(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("POST", "/v1/api-keys", nil, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusBadRequest, res.Code)
	require.Equal(t, "Idempotency-Key", res.errorOf(t)["param"])
	res = a.do("POST", "/v1/api-keys", map[string]any{"name": strings.Repeat("n", 101)})
	require.Equal(t, http.StatusUnprocessableEntity, res.Code)
	require.Equal(t, "name", res.errorOf(t)["param"])
	res = a.do("POST", "/v1/api-keys", map[string]any{"label": "x"})
	require.Equal(t, http.StatusBadRequest, res.Code)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM api_keys WHERE merchant_id = $1`, a.merchant.ID), "nothing written")
}

// TestAdminIssuesAPIKeyToLockedOutMerchant: a merchant whose every key was
// revoked (by SQL, or the key lost) gets a new one from an operator.
func TestAdminIssuesAPIKeyToLockedOutMerchant(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	dbtest.RevokeAPIKey(t, b.store, b.key)
	res := serve(t, b.e, "GET", "/v1/payments", nil, "Authorization", "Bearer "+b.key)
	require.Equal(t, http.StatusUnauthorized, res.Code)

	res = b.admin("POST", "/admin/merchants/"+b.merchant.ID.String()+"/api-keys", map[string]any{"name": "recovered"})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	key := res.json(t)["key"].(string)
	res = serve(t, b.e, "GET", "/v1/payments", nil, "Authorization", "Bearer "+key)
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)

	res = b.admin("POST", "/admin/merchants/"+b.merchant.ID.String()+"/api-keys", nil, "Authorization", "Bearer "+b.key)
	require.Equal(t, http.StatusUnauthorized, res.Code, "admin only")
	res = b.admin("POST", "/admin/merchants/0190a0a0-0000-7000-8000-000000000000/api-keys", nil)
	require.Equal(t, http.StatusNotFound, res.Code)
}
