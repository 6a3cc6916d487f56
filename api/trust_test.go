package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/metrics"
	"github.com/boohpay/boohpay/metrics/metricstest"
)

// waitClosed reads conn until the server closes it and returns what it
// read. The deadline is a safety net far beyond the server's limits: hitting
// it means the server held the connection.
func waitClosed(t *testing.T, conn net.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
	var got strings.Builder
	_, err := io.Copy(&got, conn)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("the server kept the connection open (read so far: %.200q)", got.String())
	}
	return got.String()
}

// TestServerClosesSlowAndIdleConnections: with the server serve builds
// (short limits here), a client that sends a provider webhook's body one
// byte at a time, one that never finishes its headers, and an idle
// keep-alive connection are all closed by the server. Before issue 13 only
// the header had a timeout: the first and last stayed open for good.
func TestServerClosesSlowAndIdleConnections(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	e := api.NewServer(api.Config{ProviderSecrets: map[string]string{"stripe": "whsec_slow"}}, slog.New(slog.DiscardHandler), store, nil)
	srv := httptest.NewUnstartedServer(e)
	srv.Config = api.NewHTTPServer(e, api.ServerLimits{ReadHeaderTimeout: 300 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	srv.Start()
	t.Cleanup(srv.Close)
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// drip writes one byte every 50 ms until the server closes the connection.
	drip := func(conn net.Conn, b byte) {
		go func() {
			for {
				if _, err := conn.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}

	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		conn := dial()
		_, err := io.WriteString(conn, "POST /v1/webhooks/stripe HTTP/1.1\r\nHost: boohpay.test\r\nContent-Type: application/json\r\n"+
			"Stripe-Signature: t=1,v1=00\r\nContent-Length: 100000\r\n\r\n{\"id\":\"")
		require.NoError(t, err)
		drip(conn, 'a')
		got := waitClosed(t, conn)
		if got != "" { // the server may answer the request it gave up on before closing
			res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
			require.NoError(t, err)
			require.GreaterOrEqual(t, res.StatusCode, 400)
			require.Less(t, res.StatusCode, 500)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		t.Parallel()
		conn := dial()
		_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: boohpay.test\r\nX-Slow: ")
		require.NoError(t, err)
		drip(conn, 'h')
		waitClosed(t, conn)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		conn := dial()
		_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: boohpay.test\r\n\r\n")
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.False(t, res.Close, "a keep-alive answer")
		res.Body.Close()
		waitClosed(t, conn)
	})
	t.Run("defaults", func(t *testing.T) {
		s := api.NewHTTPServer(e, api.ServerLimits{})
		require.Positive(t, s.ReadHeaderTimeout)
		require.Positive(t, s.ReadTimeout)
		require.Positive(t, s.WriteTimeout)
		require.Positive(t, s.IdleTimeout)
		require.Equal(t, 64<<10, s.MaxHeaderBytes)
	})
}

// TestRateLimitPerAPIKey: RATE_LIMIT requests a second per key with a burst
// of twice that; past it, 429 rate_limited with Retry-After, and nothing
// done. Another key keeps its own allowance; provider webhooks and ops
// routes are not limited by merchant keys.
func TestRateLimitPerAPIKey(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	ctx := context.Background()
	ours, err := store.MerchantCreate(ctx, "Limited", "")
	require.NoError(t, err)
	theirs, err := store.MerchantCreate(ctx, "Other", "")
	require.NoError(t, err)
	// One request a second: a burst of two, then one a second. The
	// requests below come far faster than that, so the third (or, on a
	// machine stalled for a second, a later one) is refused.
	e := api.NewServer(api.Config{RateLimit: 1}, slog.New(slog.DiscardHandler), store, nil)
	create := `{"amount":5000,"currency":"XAF","gateway":"sandbox"}`
	for i := range 2 {
		res := serve(t, e, "POST", "/v1/payments", create, "Authorization", "Bearer "+ours.APIKey)
		require.Equal(t, http.StatusCreated, res.Code, "request %d of the burst: %s", i+1, res.Body)
	}
	var limited *response
	for range 50 {
		res := serve(t, e, "POST", "/v1/payments", create, "Authorization", "Bearer "+ours.APIKey)
		if res.Code == http.StatusTooManyRequests {
			limited = res
			break
		}
		require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	}
	require.NotNil(t, limited, "never rate limited")
	requireError(t, limited, http.StatusTooManyRequests, "invalid_request_error", "rate_limited")
	require.Equal(t, "1", limited.Header.Get("Retry-After"))
	var created int
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE merchant_id = $1`, ours.Merchant.ID).Scan(&created))
	before := created

	// Reads count too; another key does not share the allowance.
	res := serve(t, e, "GET", "/v1/payments", nil, "Authorization", "Bearer "+ours.APIKey)
	require.Equal(t, http.StatusTooManyRequests, res.Code)
	res = serve(t, e, "GET", "/v1/payments", nil, "X-API-Key", theirs.APIKey)
	require.Equal(t, http.StatusOK, res.Code)
	require.Equal(t, http.StatusOK, serve(t, e, "GET", "/healthz", nil).Code)
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE merchant_id = $1`, ours.Merchant.ID).Scan(&created))
	require.Equal(t, before, created, "a refused request did nothing")

	// A fractional rate asks for a longer wait.
	slow := api.NewServer(api.Config{RateLimit: 0.25}, slog.New(slog.DiscardHandler), store, nil)
	for range 50 {
		res = serve(t, slow, "GET", "/v1/payments", nil, "Authorization", "Bearer "+theirs.APIKey)
		if res.Code == http.StatusTooManyRequests {
			break
		}
	}
	require.Equal(t, http.StatusTooManyRequests, res.Code)
	require.Equal(t, "4", res.Header.Get("Retry-After"))
}

// TestRequestIDOursUnlessASafeToken: the client's X-Request-Id is adopted
// only when it is a short token of safe characters; otherwise the answer,
// the log and admin_actions carry our own. (An X-Request-Id of \xff\xfe on
// the admin override was echoed, logged and stored as is.)
func TestRequestIDOursUnlessASafeToken(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	for _, tc := range []struct {
		given string
		kept  bool
	}{
		{"req-override-1", true},
		{"6f1c3c1e-0f7e-4d2b-9c1e-2a3b4c5d6e7f", true},
		{"trace:abc.DEF_123", true},
		{strings.Repeat("r", 65), false},
		{"has space", false},
		{"semi;colon", false},
		{"<script>", false},
		{"é", false},
	} {
		id := b.createPayment(5000)
		res := b.admin("POST", "/admin/payments/"+id+"/status", map[string]any{"status": "AUTHORIZED", "reason": "request id"},
			"X-Request-Id", tc.given)
		require.Equal(t, http.StatusOK, res.Code, "%q: %s", tc.given, res.Body)
		echoed := res.Header.Get(echo.HeaderXRequestID)
		actions := b.adminActions(id)
		require.Len(t, actions, 1)
		require.Equal(t, echoed, *actions[0].RequestID, "%q", tc.given)
		if tc.kept {
			require.Equal(t, tc.given, echoed)
			continue
		}
		_, err := uuid.Parse(echoed)
		require.NoError(t, err, "%q: ours is a UUID, got %q", tc.given, echoed)
	}
	// Bytes that are not text are refused like in any other header.
	id := b.createPayment(5000)
	res := b.admin("POST", "/admin/payments/"+id+"/status", map[string]any{"status": "AUTHORIZED", "reason": "request id"},
		"X-Request-Id", "\xff\xfe")
	requireError(t, res, http.StatusBadRequest, "invalid_request_error", db.EInvalid)
	_, err := uuid.Parse(res.Header.Get(echo.HeaderXRequestID))
	require.NoError(t, err)
	require.Zero(t, b.count(`SELECT count(*) FROM admin_actions WHERE object_id = $1`, id))
}

// TestEveryMetricFamilyFromTheFirstScrape: a fresh process's first scrape
// already shows every family of the contract, with its labels (before issue
// 13, webhooks_received_total, payment_amount and http_request_errors_total
// appeared only once something had happened).
func TestEveryMetricFamilyFromTheFirstScrape(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	m := metrics.New(prometheus.NewPedanticRegistry(), metrics.Config{Pool: store.Pool, Queues: []string{db.DeliveryQueue}})
	e := api.NewServer(api.Config{}, slog.New(slog.DiscardHandler), store, m)
	res := serve(t, e, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, res.Code)
	families := metricstest.Parse(t, res.Body)
	metricstest.RequirePromised(t, families)
	metricstest.RequireNoIDLabels(t, families)
	metricstest.Promtool(t, res.Body)
}
