package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// apiTest is a whole API on a fresh database, with one merchant.
type apiTest struct {
	t        *testing.T
	e        *echo.Echo
	store    *db.Store
	merchant *db.Merchant
	key      string
}

func newAPITest(t *testing.T) *apiTest {
	t.Helper()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(context.Background(), "API Test", "https://merchant.example.com/hooks")
	require.NoError(t, err)
	e := api.NewServer(api.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), store, nil)
	return &apiTest{t: t, e: e, store: store, merchant: nm.Merchant, key: nm.APIKey}
}

// otherMerchantKey makes a second merchant and returns its API key.
func (a *apiTest) otherMerchantKey() string {
	nm, err := a.store.MerchantCreate(context.Background(), "Other", "")
	require.NoError(a.t, err)
	return nm.APIKey
}

type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// errorOf checks the one error shape and returns its detail.
func (r *response) errorOf(t *testing.T) map[string]any {
	t.Helper()
	m := r.json(t)
	detail, ok := m["error"].(map[string]any)
	require.True(t, ok, "no error object in %s", r.Body)
	require.NotEmpty(t, detail["type"])
	require.NotEmpty(t, detail["code"])
	require.NotEmpty(t, detail["message"])
	return detail
}

// do sends a request as the test merchant; headers are name, value pairs.
func (a *apiTest) do(method, path string, body any, headers ...string) *response {
	a.t.Helper()
	return serve(a.t, a.e, method, path, body, append([]string{"Authorization", "Bearer " + a.key}, headers...)...)
}

// serve sends one request to e: body is nil, a string, bytes or a value
// to encode as JSON; headers are name, value pairs, applied in order ("" removes).
func serve(t *testing.T, e *echo.Echo, method, path string, body any, headers ...string) *response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return &response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func (a *apiTest) count(query string, args ...any) int {
	a.t.Helper()
	var n int
	require.NoError(a.t, a.store.Pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// createPayment creates a sandbox XAF payment and returns its id.
func (a *apiTest) createPayment(amount int) string {
	a.t.Helper()
	res := a.do("POST", "/v1/payments", map[string]any{"amount": amount, "currency": "XAF", "gateway": "sandbox"})
	require.Equal(a.t, http.StatusCreated, res.Code, "%s", res.Body)
	return res.json(a.t)["id"].(string)
}
