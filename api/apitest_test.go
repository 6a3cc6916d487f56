package api_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/metrics"
)

// apiTest is the one API test setup: the whole router on a fresh database
// (or the store withStore gives), its log kept, and one merchant with a
// webhook URL. Options add what a test needs beyond that.
type apiTest struct {
	t     *testing.T
	e     *echo.Echo
	store *db.Store
	// river is an insert-only River client on store: the River UI's, and
	// for tests that add jobs.
	river    *river.Client[pgx.Tx]
	logs     *dbtest.Logs // the server's log: JSON, debug level
	merchant *db.Merchant
	key      string // the merchant's API key
	otherKey string // withOtherMerchant: a second merchant's API key
}

type setupOptions struct {
	cfg           api.Config
	store         *db.Store
	noMerchant    bool
	otherMerchant bool
	metrics       bool
}

type option func(*setupOptions)

// withConfig serves with cfg; with an AdminToken it mounts the River UI too.
func withConfig(cfg api.Config) option { return func(o *setupOptions) { o.cfg = cfg } }

// withStore serves store instead of a fresh database.
func withStore(store *db.Store) option { return func(o *setupOptions) { o.store = store } }

// withoutMerchant creates no merchant (the store may be unreachable).
func withoutMerchant() option { return func(o *setupOptions) { o.noMerchant = true } }

// withOtherMerchant creates a second merchant, without a webhook URL: otherKey.
func withOtherMerchant() option { return func(o *setupOptions) { o.otherMerchant = true } }

// withMetrics records the service's metrics on a registry of the test's own.
func withMetrics() option { return func(o *setupOptions) { o.metrics = true } }

func setup(t *testing.T, opts ...option) *apiTest {
	t.Helper()
	var o setupOptions
	for _, opt := range opts {
		opt(&o)
	}
	store := o.store
	if store == nil {
		store = dbtest.Store(t)
	}
	logs := &dbtest.Logs{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rc, err := river.NewClient(riverpgxv5.New(store.Pool), &river.Config{Logger: log})
	require.NoError(t, err)
	cfg := o.cfg
	// A generous database bound: these tests check what the answers say, not
	// how fast a loaded CI machine gives them (unavailable_test.go checks the bound).
	cfg.DatabaseTimeout = cmp.Or(cfg.DatabaseTimeout, time.Minute)
	if cfg.AdminToken != "" && cfg.RiverUI == nil {
		cfg.RiverUI, err = api.NewRiverUI(t.Context(), rc, log)
		require.NoError(t, err)
	}
	var m *metrics.Metrics
	if o.metrics {
		m = metrics.New(prometheus.NewRegistry(), metrics.Config{Pool: store.Pool, Queues: []string{db.DeliveryQueue}})
	}
	a := &apiTest{t: t, e: api.NewServer(cfg, log, store, m), store: store, river: rc, logs: logs}
	if !o.noMerchant {
		nm, err := store.MerchantCreate(context.Background(), "API Test", "https://merchant.example.com/hooks")
		require.NoError(t, err)
		a.merchant, a.key = nm.Merchant, nm.APIKey
	}
	if o.otherMerchant {
		a.otherKey = a.otherMerchantKey()
	}
	return a
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

// do sends a request as the test merchant; headers are name, value pairs
// (a later one wins; "" removes it).
func (a *apiTest) do(method, path string, body any, headers ...string) *response {
	a.t.Helper()
	return serve(a.t, a.e, method, path, body, append([]string{"Authorization", "Bearer " + a.key}, headers...)...)
}

// admin sends a request with the admin token (withConfig's AdminToken
// should be adminToken); headers as for do.
func (a *apiTest) admin(method, path string, body any, headers ...string) *response {
	a.t.Helper()
	return serve(a.t, a.e, method, path, body, append([]string{"Authorization", "Bearer " + adminToken}, headers...)...)
}

// serveRequest sends req as it is.
func (a *apiTest) serveRequest(req *http.Request) *response {
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, req)
	return &response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
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
	return dbtest.Count(a.t, a.store.Pool, query, args...)
}

// adminActions reads the admin actions recorded on an object, oldest first.
func (a *apiTest) adminActions(objectID string) []*db.AdminAction {
	a.t.Helper()
	rows, err := a.store.Pool.Query(context.Background(), `SELECT * FROM admin_actions WHERE object_id = $1 ORDER BY id`, objectID)
	require.NoError(a.t, err)
	actions, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByName[db.AdminAction])
	require.NoError(a.t, err)
	return actions
}

// createPayment creates a sandbox XAF payment and returns its id.
func (a *apiTest) createPayment(amount int) string {
	a.t.Helper()
	res := a.do("POST", "/v1/payments", map[string]any{"amount": amount, "currency": "XAF", "gateway": "sandbox"})
	require.Equal(a.t, http.StatusCreated, res.Code, "%s", res.Body)
	return res.json(a.t)["id"].(string)
}
